//! A pipeline's counts exported to Prometheus while it runs: every report
//! of a `Control::watch` goes to the `metrics` facade, and the Prometheus
//! exporter renders what a scrape of `/metrics` would get.
//!
//! ```text
//! cargo run --release --features metrics --example prometheus
//! ```

use std::time::Duration;

use futures_lite::StreamExt;
use metrics_exporter_prometheus::PrometheusBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In a service, `PrometheusBuilder::new().install()` would serve this
    // on an HTTP port; here the text of one scrape is printed instead.
    let recorder = PrometheusBuilder::new().build_recorder();
    let scrape = recorder.handle();
    metrics::set_global_recorder(recorder)?;

    let job = flowgate::from_iter(0..200_000u64)
        .name("numbers")
        .filter(|x| x % 3 != 0)
        .name("no threes")
        .then(|x| async move {
            if x % 10_000 == 0 {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
            x * 2
        })
        .name("double")
        .fold(0u64, |sum, x| sum + x)
        .name("sum");
    let control = job.control();
    // The exporter is kept current from a thread of its own, one report
    // every 50 ms; the final report comes last.
    let exporter = std::thread::spawn(move || {
        smol::block_on(async {
            let mut reports = control.watch(Duration::from_millis(50))?;
            while let Some(report) = reports.next().await {
                report.record_metrics("example");
            }
            Ok::<(), flowgate::Error>(())
        })
    });
    let sum = job.run()?;
    exporter.join().expect("the exporter thread")?;
    println!("sum {sum}\n");
    for line in scrape.render().lines() {
        if line.starts_with("flowgate_stage_received_total")
            || line.starts_with("flowgate_stage_emitted_total")
            || line.starts_with("flowgate_stage_filtered_total")
            || line.starts_with("flowgate_stage_busy_seconds")
        {
            println!("{line}");
        }
    }
    Ok(())
}
