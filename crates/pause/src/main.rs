//! `pause`: being written.

fn main() {}
