//! `mixbench list`.

use super::{Cli, EXIT_OK};
use crate::suite::load::{list_ids, load};

/// Prints every suite with its title and profiles.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    for id in list_ids(&cli.suites_dir)? {
        let ls = load(&cli.suites_dir, &id)?;
        let s = &ls.suite;
        let runnable = s.experiments.iter().filter(|e| e.quoted.is_none()).count();
        println!(
            "{id:10} {} (arXiv:{} Table {})",
            s.title, s.paper.arxiv, s.paper.table
        );
        println!("{:10} {runnable} experiments; profiles:", "");
        for (name, p) in &s.profiles {
            println!(
                "{:12} {name:11} seeds {:?} — {}",
                "", p.seeds, p.description
            );
        }
    }
    Ok(EXIT_OK)
}
