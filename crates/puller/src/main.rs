//! `puller`: being written.

fn main() {}
