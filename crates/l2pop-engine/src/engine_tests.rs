//! Unit tests of the engine's validation, queries and extension handling.

use super::*;
