//! Operating-system effects that need more than the standard library: entering a network
//! namespace, file handles and filesystem ids (the fanotify sensor), what privileges this
//! process holds, reading processes from /proc, and user names.

pub mod handle;
pub mod netns;
pub mod privileges;
pub mod procfs;
pub mod users;
