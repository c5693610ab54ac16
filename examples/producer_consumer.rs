//! A producer and a consumer joined by a bounded hop, after the generator
//! producer/consumer in the seed notes: the producer makes five items, the
//! consumer takes each one as it arrives, and closing the producer ends the
//! consumer.
//!
//! Run with: cargo run --release --example producer_consumer

fn main() -> Result<(), flowgate::Error> {
    // Capacity 1 keeps producer and consumer in lock step, as in the notes.
    let consumed = flowgate::from_iter(1..=5u32)
        .inspect(|n| println!("[Producer]Producing {n}..."))
        .name("producer")
        .capacity(1)
        .fold(0, |count, n| {
            println!("[Consumer]Consuming {n}...");
            count + 1
        })
        .name("consumer")
        .run()?;
    println!("[PRODUCER]Consumer took {consumed} items, then the producer closed");
    Ok(())
}
