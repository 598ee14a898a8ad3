//! test fixtures
