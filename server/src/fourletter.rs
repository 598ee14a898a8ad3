//! fourletter (in progress).
