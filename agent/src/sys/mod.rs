//! Operating-system effects that need more than the standard library: entering a network
//! namespace, what privileges this process holds, and reading processes from /proc.

pub mod netns;
pub mod privileges;
pub mod procfs;
