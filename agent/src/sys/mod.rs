//! Operating-system effects that need more than the standard library: entering a network
//! namespace, and what privileges this process holds.

pub mod netns;
pub mod privileges;
