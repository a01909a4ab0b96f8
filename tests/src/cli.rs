//! CLI helper (filled in below).
