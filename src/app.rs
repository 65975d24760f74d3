//! mixbench as a library with extensions: a crate that depends on mixbench registers its own
//! regularizers, models, datasets or evaluators, then hands over to mixbench's command line.
//! Each is a [`crate::registry::Entry`], usually [`Entry::typed`] over its `Params` type, so a
//! bad parameter in a suite points at its line and column and `mixbench schema` describes it.
//!
//! ```no_run
//! # #[derive(serde::Deserialize, schemars::JsonSchema)]
//! # struct Params { beta: f64 }
//! # fn my_build(_: &serde_json::Map<String, serde_json::Value>)
//! #     -> mixbench::Result<Box<dyn mixbench::regularizer::Regularizer>> { unimplemented!() }
//! use mixbench::registry::Entry;
//! fn main() {
//!     mixbench::App::new()
//!         .regularizer(Entry::typed::<Params>("my_reg", "what it does; params: beta", my_build))
//!         .run()
//! }
//! ```

use crate::registry::Entry;
use crate::{data, eval, model, regularizer};

/// Extensions to register before the command line runs.
#[derive(Default)]
pub struct App {
    regularizers: Vec<Entry<regularizer::registry::BuildFn>>,
    models: Vec<Entry<model::registry::BuildFn>>,
    datasets: Vec<Entry<data::registry::BuildFn>>,
    evaluators: Vec<Entry<eval::registry::BuildFn>>,
}

impl App {
    /// mixbench with only its built-in entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regularizer usable as `regularizer: {name: <name>, ...}` in suites and in
    /// `mixbench compare --with`.
    pub fn regularizer(mut self, entry: regularizer::registry::RegularizerEntry) -> Self {
        self.regularizers.push(entry);
        self
    }

    /// Adds an architecture usable as `model: {arch: <name>, ...}`.
    pub fn model(mut self, entry: model::registry::ModelEntry) -> Self {
        self.models.push(entry);
        self
    }

    /// Adds a dataset usable as `dataset: {name: <name>, ...}`; its source's `name()` must be
    /// the entry's name.
    pub fn dataset(mut self, entry: data::registry::DatasetEntry) -> Self {
        self.datasets.push(entry);
        self
    }

    /// Adds an evaluator usable in `evaluations: [{name: <name>, ...}]`; the entry's `sweep`
    /// ([`Entry::with_sweep`]) lists the parameters that may be given as lists.
    pub fn evaluator(mut self, entry: eval::registry::EvaluatorEntry) -> Self {
        self.evaluators.push(entry);
        self
    }

    /// Adds every extension to the process-wide registries; a taken or malformed name is an
    /// error naming it.
    pub fn register(self) -> crate::Result<()> {
        for e in self.regularizers {
            regularizer::registry::REGISTRY.add(e)?;
        }
        for e in self.models {
            model::registry::REGISTRY.add(e)?;
        }
        for e in self.datasets {
            let source = (e.build)();
            if source.name() != e.name {
                return Err(crate::Error::Config(format!(
                    "cannot register dataset `{}`: its source calls itself `{}`",
                    e.name,
                    source.name()
                )));
            }
            data::registry::REGISTRY.add(e)?;
        }
        for e in self.evaluators {
            eval::registry::REGISTRY.add(e)?;
        }
        Ok(())
    }

    /// Registers the extensions and runs mixbench's command line on the process arguments,
    /// then exits with its code (2 when an extension cannot be registered).
    ///
    /// When candle's thread settings are missing from the environment, the program first
    /// replaces itself with a copy that has them (same arguments, same process id), because
    /// setting them in a running process is unsound once any thread exists; if that fails it
    /// runs unpinned, slower with the same results.
    pub fn run(self) -> ! {
        #[cfg(unix)]
        crate::threads::restart_with_pinned_threads();
        crate::memory::keep_freed_memory();
        // `mixbench show ... | head` should end quietly when the reader goes away, as other
        // command-line tools do, instead of panicking on a broken pipe.
        #[cfg(unix)]
        // SAFETY: `signal` with SIG_DFL installs no handler code; it only restores the default
        // action of one signal for the whole process.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        if let Err(e) = self.register() {
            eprintln!("error: {e}");
            std::process::exit(crate::cli::EXIT_ERROR);
        }
        std::process::exit(crate::cli::main())
    }
}
