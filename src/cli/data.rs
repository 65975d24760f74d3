//! `mixbench data status` and `mixbench data verify [name]`.

use std::path::PathBuf;

use crate::data::LoadOptions;
use crate::data::files::location::resolve_data_dir_with_origin;
use crate::data::files::status;

/// Options of `mixbench data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DataCommand,
    /// Folder holding the datasets (default: $MIXBENCH_DATA, else ./data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Report checksum mismatches as warnings instead of corruption.
    #[arg(long, global = true)]
    pub allow_unverified: bool,
}

/// Subcommands of `mixbench data`.
#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// List every dataset: present / missing / corrupt, path and fingerprint, with help for
    /// the missing ones.
    Status,
    /// Re-hash the files of every dataset (or of one) against the canonical checksums.
    Verify {
        /// Dataset name (`cifar10`, `cifar100`, `svhn`, `tiny_imagenet`, `mnist`, `digits`).
        name: Option<String>,
    },
}

/// Runs the subcommand and prints its table; exit code 2 when `verify` finds a dataset
/// missing or corrupt, else 0.
pub fn run(args: &DataArgs) -> anyhow::Result<i32> {
    let (data_dir, origin) = resolve_data_dir_with_origin(args.data_dir.as_deref());
    let opts = LoadOptions {
        data_dir: data_dir.clone(),
        allow_unverified: args.allow_unverified,
        progress: None,
    };
    let (verify, only) = match &args.command {
        DataCommand::Status => (false, None),
        DataCommand::Verify { name } => (true, name.as_deref()),
    };
    let statuses = status::collect(&opts, verify, only)?;
    print!(
        "{}",
        status::render(&statuses, &data_dir, origin.describe(), verify)
    );
    Ok(if verify && status::any_problem(&statuses) {
        2
    } else {
        0
    })
}
