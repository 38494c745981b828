//! The response cache and what invalidates it.

pub mod change_feed;
