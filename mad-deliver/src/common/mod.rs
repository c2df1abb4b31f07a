//! What every channel shares: safe file names, placeholder rendering of subjects, bodies and
//! paths, and files that appear under their final name only once complete.
//!
//! A channel never builds a file name, a subject or a path by hand; it goes through these
//! functions, so every channel refuses the same tricks (`../`, reserved device names, header
//! injection through a recipient's name) in the same way.

mod claims;
mod names;
pub mod remote;
mod staged;
mod template;

pub use claims::{Claims, Owner};
pub use names::{MAX_FILE_NAME_BYTES, sanitize_file_name, versioned_file_name};
pub use staged::{
    STALE_TEMPORARY, StagedFile, is_temporary_name, remove_stale_temporaries, unique_token,
};
pub use template::{check_path_template, check_template, render_line, render_path, render_text};
