//! The report handed to the `metrics` facade (the `metrics` feature), for
//! any exporter: Prometheus, StatsD, OpenTelemetry.

use metrics::{counter, gauge};

use crate::report::run::Report;

impl Report {
    /// Records every stage's counts in the `metrics` facade, labelled
    /// `pipeline` (as given) and `stage` (the stage's name), as absolute
    /// values: call it on each report of a [`watch`](crate::Control::watch)
    /// to keep an exporter current. Counters:
    /// `flowgate_stage_received_total`, `_emitted_total`, `_filtered_total`,
    /// `_failed_total`, `_skipped_total`, `_retried_total`,
    /// `_dead_lettered_total`, `_dropped_total`, `_shed_total` and
    /// `_restarts_total`; gauges:
    /// `flowgate_stage_queued` and `flowgate_stage_queue_capacity` (the
    /// stage's input hop), and `flowgate_stage_busy_seconds`,
    /// `_blocked_send_seconds`, `_blocked_recv_seconds` and
    /// `_throttled_seconds`.
    ///
    /// # Examples
    ///
    /// ```
    /// use metrics_exporter_prometheus::PrometheusBuilder;
    ///
    /// let recorder = PrometheusBuilder::new().build_recorder();
    /// let scrape = recorder.handle();
    /// let job = flowgate::from_iter(0..100u32).name("numbers").filter(|x| x % 2 == 0).count();
    /// let control = job.control();
    /// job.run()?;
    /// metrics::with_local_recorder(&recorder, || control.report().record_metrics("evens"));
    /// let text = scrape.render();
    /// assert!(text.contains(r#"flowgate_stage_emitted_total{pipeline="evens",stage="numbers"} 100"#));
    /// # Ok::<(), flowgate::Error>(())
    /// ```
    pub fn record_metrics(&self, pipeline: &str) {
        for stage in &self.stages {
            let labels = [
                ("pipeline", pipeline.to_owned()),
                ("stage", stage.name.clone()),
            ];
            for (name, value) in [
                ("flowgate_stage_received_total", stage.received),
                ("flowgate_stage_emitted_total", stage.emitted),
                ("flowgate_stage_filtered_total", stage.filtered),
                ("flowgate_stage_failed_total", stage.failed),
                ("flowgate_stage_skipped_total", stage.skipped),
                ("flowgate_stage_retried_total", stage.retried),
                ("flowgate_stage_dead_lettered_total", stage.dead_lettered),
                ("flowgate_stage_dropped_total", stage.dropped),
                ("flowgate_stage_shed_total", stage.shed),
                ("flowgate_stage_restarts_total", stage.restarts),
            ] {
                counter!(name, &labels).absolute(value);
            }
            for (name, value) in [
                ("flowgate_stage_queued", stage.queued as f64),
                ("flowgate_stage_queue_capacity", stage.queue_capacity as f64),
                ("flowgate_stage_busy_seconds", stage.busy.as_secs_f64()),
                (
                    "flowgate_stage_blocked_send_seconds",
                    stage.blocked_send.as_secs_f64(),
                ),
                (
                    "flowgate_stage_blocked_recv_seconds",
                    stage.blocked_recv.as_secs_f64(),
                ),
                (
                    "flowgate_stage_throttled_seconds",
                    stage.throttled.as_secs_f64(),
                ),
            ] {
                gauge!(name, &labels).set(value);
            }
        }
    }
}
