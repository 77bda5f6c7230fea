//! The process-wide Prometheus recorder behind `GET /metrics`.
//!
//! Every histogram is a Prometheus histogram with fixed buckets, never a summary: a summary
//! keeps a sketch that grows with the samples, and both keep each raw sample in the handle's
//! buffer until something drains it. Here the buckets are fixed ([`SECONDS_BUCKETS`] for
//! durations, [`COUNT_BUCKETS`] for batch sizes), and an upkeep thread drains the buffers into
//! them every [`UPKEEP_INTERVAL`], so memory stays the same between scrapes however many
//! requests are timed (and whether or not anything scrapes at all).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds, in seconds, of the duration histograms (API requests, commits).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the count histograms (commands per commit round, at most 4,096).
pub const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// How often the upkeep thread drains recorded samples into the buckets.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder's configuration: fixed buckets for every histogram.
pub fn builder() -> PrometheusBuilder {
    // Both calls fail only on an empty list; the lists are constants.
    PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("l2pop_commit_batch_commands".to_owned()),
                COUNT_BUCKETS,
            )
        })
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// The process-wide recorder (installed once; several in-process servers in tests share it),
/// with its upkeep thread.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = builder().install_recorder().ok()?;
            let upkeep = handle.clone();
            // Lives as long as the process-wide recorder it serves.
            let spawned = std::thread::Builder::new()
                .name("l2pop-metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "metrics: no upkeep thread; histograms drain at scrapes only");
            }
            Some(handle)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records `samples` spread over five orders of magnitude in each histogram the server
    /// has, drains them as the upkeep thread does, and renders.
    fn render_after(samples: u32) -> String {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            for n in 0..samples {
                let seconds = f64::from(n % 100_000) / 10_000.0;
                metrics::histogram!(
                    "l2pop_api_request_duration_seconds",
                    "method" => "GET",
                    "route" => "/v2.0/ports",
                    "status" => "200"
                )
                .record(seconds);
                metrics::histogram!("l2pop_commit_seconds").record(seconds);
                metrics::histogram!("l2pop_commit_batch_commands").record(f64::from(n % 5000));
            }
        });
        handle.run_upkeep();
        handle.render()
    }

    #[test]
    fn histograms_are_fixed_buckets_whatever_the_number_of_samples() {
        let few = render_after(10);
        let many = render_after(200_000);
        for text in [&few, &many] {
            assert!(
                !text.contains("quantile="),
                "a summary, not a histogram:\n{text}"
            );
            assert!(
                text.contains("l2pop_commit_batch_commands_bucket{le=\"4096\"}"),
                "{text}"
            );
            assert!(
                text.contains("l2pop_commit_seconds_bucket{le=\"10\"}"),
                "{text}"
            );
        }
        // One line per bucket, +Inf, sum and count (and the TYPE lines) per histogram: the
        // same text shape after ten samples and after 200,000.
        let lines = |text: &str| text.lines().count();
        assert_eq!(lines(&few), lines(&many), "{few}\n---\n{many}");
        let buckets = SECONDS_BUCKETS.len() * 2 + COUNT_BUCKETS.len() + 3;
        let bucket_lines = many.lines().filter(|l| l.contains("_bucket{")).count();
        assert_eq!(bucket_lines, buckets, "{many}");
        // Only the numbers differ in width.
        assert!(many.len() < few.len() + 64 * lines(&many), "{many}");
    }
}
