//! txn (in progress).
