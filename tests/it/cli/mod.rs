//! The command line itself: flags, mistakes, what is printed.

mod flags;
mod mistakes;
mod terminal;
