//! Dataset files on disk: where they live, what each dataset expects (manifests), sha256
//! verification, and the status table behind `mixbench data`.

pub mod hash;
pub mod location;
pub mod manifest;
pub mod status;
