//! The throwaway test node: being written.
