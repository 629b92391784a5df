//! The one place where the pipeline's stages are timed and logged.

use std::time::Instant;

use anyhow::Result;

/// Runs stages one after the other, logging each one's start and duration.
#[derive(Debug, Default)]
pub struct StageClock {
    stages: Vec<(String, f64)>,
}

impl StageClock {
    /// Runs one stage: `stage NAME`, the work, then `stage NAME done in S s`. A
    /// failed stage is logged by its error, not timed.
    pub fn run<T>(&mut self, name: &str, stage: impl FnOnce() -> Result<T>) -> Result<T> {
        tracing::info!("stage {name}");
        let started = Instant::now();
        let product = stage()?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!("stage {name} done in {secs:.1} s");
        self.stages.push((name.to_string(), secs));
        Ok(product)
    }

    /// Each finished stage's name and seconds, in order.
    pub fn into_stages(self) -> Vec<(String, f64)> {
        self.stages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_stages_are_timed_in_order_and_failed_ones_are_not() {
        let mut clock = StageClock::default();
        assert_eq!(clock.run("one", || Ok(1)).expect("runs"), 1);
        assert!(clock
            .run("two", || -> Result<()> { anyhow::bail!("broken") })
            .is_err());
        assert_eq!(clock.run("three", || Ok("x")).expect("runs"), "x");
        let names: Vec<String> = clock.into_stages().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["one", "three"]);
    }
}
