//! Random access inside layers: what a layer index costs to record and to keep, and what
//! it saves when one file of a large layer is shown or saved (BENCHMARKS.md, "Random
//! access inside layers"; issue 14).
//!
//! `cargo bench --bench index` (`-- --mib 16` for a quick run; `-- --only listing`,
//! `pages` or `curve` for one part). A separate program from
//! `benches/listing.rs`: that one measures a 1 GiB text-only gzip layer against `gzip -dc
//! | tar -t` for minutes; this one needs a layer of mixed files in three compressions,
//! and should run in a few minutes at its default size, so that CI-sized runs stay
//! possible.
//!
//! The layer is made at run time, in memory, never committed: thousands of files, most
//! small, some up to 1 MiB, 60% of them text (words from a 4,096-word vocabulary) and
//! 40% pseudo-random bytes (binaries and already-compressed assets do not compress), and
//! three large files (two incompressible, one text) at a quarter, half and three
//! quarters of the way. Files are added until the gzip (level 6) blob reaches `--mib`
//! MiB (default 100). The same tar is also compressed as zstd (level 3) in frames of
//! 4 MiB of input, as seekable-zstd and estargz writers cut them, and as one zstd frame.
//!
//! Reported:
//! 1. Listing with and without recording an index: the decompressor and tar reader
//!    alone on this thread, blob in memory, 32 KiB writes (layerpipe's decompressing
//!    thread's step), `Decompressor::new` against `Decompressor::recording(..,
//!    DEFAULT_SPACING)`, and the flate2 / zstd crates' own streaming decoders for
//!    reference; CPU time of the thread, best of 15 rounds, the variants interleaved
//!    within each round, and the median of the rounds' own ratios as a second reading.
//! 2. One file after one listing, through layerpipe's pages: an in-process fake
//!    registry that serves `Range` and counts the blob bytes it sends, layerpipe's
//!    `/fs/PATH` (the file's page, a 64 KiB preview) and `/save/PATH`, for the first,
//!    middle and last file and the largest; against the blob bytes a read from the
//!    blob's start needs (computed from a scan: where the decompressed stream passes the
//!    file's end) and the time that read's decompression takes alone.
//! 3. Index size (as `index::codec::encode` writes it) against the blob's size, and
//!    blob bytes fetched per file (`LayerIndex::plan` → `Plan::fetch_bytes`, exactly
//!    what a read asks for) over 200 files of up to 1 MiB (all but the large ones)
//!    spread through the layer, for several
//!    `window_ppm` and `min` spacings: the curve the default was chosen from.

#[path = "common/rng.rs"]
mod rng;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use layerpipe::digest::Digest;
use layerpipe::index::{codec, LayerIndex, DEFAULT_SPACING};
use layerpipe::layer::decompress::{Compression, Decompressor, Spacing};
use layerpipe::layer::entry::Kind;
use layerpipe::layer::listing::{Listing, ListingBuilder, Summary};
use layerpipe::layer::preview::PREVIEW_BYTES;
use layerpipe::layer::tar::Scanner;
use rng::Rng;
use support::*;

/// Compressed bytes per decompressor write: layerpipe's `scan::STEP`.
const WRITE: usize = 32 * 1024;
/// Runs of each timing; the best counts.
const RUNS: usize = 3;
/// Rounds of listings: a listing of the default layer takes a few tenths of a second,
/// and on the shared machine the same listing's CPU time ranged 0.09–0.20 s over a
/// few seconds (a VM's stolen time counts as the thread's), so three were not enough.
const LISTING_RUNS: usize = 15;
/// Input bytes per zstd frame in the multi-frame layer.
const ZSTD_FRAME: usize = 4 << 20;
const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Files the per-file figures are taken over.
const SAMPLE: usize = 200;
/// Files larger than this are left out of the sample: saving them costs their own size.
const SAMPLE_MAX_FILE: u64 = 1 << 20;
/// The spacings the curve is drawn for.
const WINDOW_PPM: [u64; 6] = [2_500, 5_000, 10_000, 15_000, 30_000, 60_000];
const MIN_SPACING: [u64; 3] = [64 << 10, 256 << 10, 1 << 20];
/// Issue 14's targets: blob bytes per file, index size as a share of the blob, and the
/// listing's cost with recording against without.
const FILE_BUDGET: u64 = 4 << 20;
const INDEX_BUDGET: f64 = 0.02;
const RECORDING_BUDGET: f64 = 1.10;

fn main() {
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let mib = arg("--mib").map_or(100, |n| n.parse::<usize>().expect("--mib takes a number"));
    // `--only listing|pages|curve` runs one part, e.g. under a profiler.
    let only = arg("--only");
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let started = Instant::now();
    let made = make_layer(mib << 20);
    let multi: Vec<u8> =
        made.tar.chunks(ZSTD_FRAME).flat_map(|c| zstd::bulk::compress(c, 3).expect("zstd a frame")).collect();
    let single = zstd::stream::encode_all(&made.tar[..], 3).expect("zstd the layer");
    let layers = [
        Layer::new("gzip -6", GZIP_LAYER, Bytes::from(made.gzip), true),
        Layer::new("zstd -3, 4 MiB frames", ZSTD_LAYER, Bytes::from(multi), true),
        Layer::new("zstd -3, one frame", ZSTD_LAYER, Bytes::from(single), false),
    ];
    let tar = made.tar;
    println!(
        "layer: {} files ({} text, {} incompressible; largest {:.1} MiB), {:.1} MiB of tar; \
         gzip {:.1} MiB, zstd in frames {:.1} MiB, zstd one frame {:.1} MiB; made in {:.1?}",
        made.files,
        made.text_files,
        made.files - made.text_files,
        made.largest as f64 / 1048576.0,
        mib_of(tar.len() as u64),
        mib_of(layers[0].blob.len() as u64),
        mib_of(layers[1].blob.len() as u64),
        mib_of(layers[2].blob.len() as u64),
        started.elapsed()
    );

    // What every layer's reading knows: its listing (the same for all three), and for
    // each, where its decompressed stream passes each point of the tar (for reads from
    // the start) and its index at the default spacing.
    let scans: Vec<Scan> =
        if part("pages") || part("curve") { layers.iter().map(|l| Scan::of(&l.blob)).collect() } else { Vec::new() };
    for scan in &scans {
        assert_eq!((scan.listing.len(), scan.tar_bytes), (made.files, tar.len() as u64), "every file listed");
    }

    // 1. Listing with and without recording.
    let mut ratios = Vec::new();
    if part("listing") {
        ratios = listing_cost(&layers, made.files);
    }

    // 2. One file through layerpipe, after one listing.
    if part("pages") {
        pages(&layers, &scans, &tar);
    }

    // 3. The curve.
    let mut rows = Vec::new();
    if part("curve") {
        rows = curve(&layers, &scans);
    }

    println!("\nTargets (issue 14), at the default spacing:");
    for (name, ratio, median) in &ratios {
        println!(
            "- listing CPU, recording / not: {name} {ratio:.3}, median of rounds {median:.3} (≤ {RECORDING_BUDGET:.2}: \
             {})",
            met(*ratio <= RECORDING_BUDGET)
        );
    }
    for (name, row) in &rows {
        let most = row.show_max.max(row.save_max);
        println!(
            "- {name}: index {:.2}% of the blob (≤ {:.0}%: {}); blob bytes per file up to {} (show mean {}, \
             save mean {}), at most {} (≤ {}: {})",
            row.index_share * 100.0,
            INDEX_BUDGET * 100.0,
            met(row.index_share <= INDEX_BUDGET),
            human(SAMPLE_MAX_FILE),
            human(row.show_mean),
            human(row.save_mean),
            human(most),
            human(FILE_BUDGET),
            met(most <= FILE_BUDGET)
        );
    }
    println!("\n{:.0?} in all", started.elapsed());
}

/// Part 1: listing each layer with and without recording, and with the compression
/// crate's own decoder; prints the table and returns, by layer, recording / not by
/// best CPU time and the median of the rounds' ratios.
// Not inlined, so that a profiler can be told to count this part alone
// (`valgrind --tool=callgrind --toggle-collect='index::listing_cost*'`).
#[inline(never)]
fn listing_cost(layers: &[Layer], files: usize) -> Vec<(&'static str, f64, f64)> {
    println!("\n### Listing: the decompressor and tar reader alone, one thread, blob in memory\n");
    println!("| layer | decompressor | CPU s | wall s | CPU vs not recording | median of the rounds' ratios |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for layer in layers {
        let kinds = [How::Crate, How::New, How::Recording];
        let mut best = vec![(Duration::MAX, Duration::MAX); kinds.len()];
        // Each round's recording / not: the median of these is a second reading of the
        // ratio, from listings run moments apart.
        let mut paired = Vec::new();
        for _ in 0..LISTING_RUNS {
            let mut round = [Duration::ZERO; 3];
            for (k, how) in kinds.iter().enumerate() {
                let (wall, cpu, entries) = list_in_memory(&layer.blob, *how);
                assert_eq!(entries, files, "{} {how:?}", layer.name);
                best[k] = (best[k].0.min(wall), best[k].1.min(cpu));
                round[k] = cpu;
            }
            paired.push(round[2].as_secs_f64() / round[1].as_secs_f64());
        }
        paired.sort_by(f64::total_cmp);
        let median = paired[paired.len() / 2];
        let base = best[1].1.as_secs_f64();
        for (k, how) in kinds.iter().enumerate() {
            let ratio = best[k].1.as_secs_f64() / base;
            if *how == How::Recording {
                ratios.push((layer.name, ratio, median));
            }
            let median = if *how == How::Recording { format!("{median:.3}") } else { "".to_owned() };
            println!(
                "| {} | {} | {:.3} | {:.3} | {ratio:.3} | {median} |",
                layer.name,
                how.label(layer.name),
                best[k].1.as_secs_f64(),
                best[k].0.as_secs_f64()
            );
        }
    }
    ratios
}

/// Part 2: one file after one listing, through layerpipe, against a read from the
/// blob's start; prints the table.
fn pages(layers: &[Layer], scans: &[Scan], tar: &[u8]) {
    let listing = &scans[0].listing;
    let probes = probes(listing);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let served = runtime.block_on(through_layerpipe(layers, tar, listing, &probes));
    println!("\n### One file after one listing: layerpipe's pages against a read from the blob's start\n");
    println!(
        "| layer | file | size | show: fetched with index (plan) | show: from the start | save: fetched with index \
         (plan) | save: from the start | show, ms: index (from start) | save, ms: index (from start) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (l, layer) in layers.iter().enumerate() {
        let index = &scans[l].index;
        for (p, probe) in probes.iter().enumerate() {
            let got = &served[l][p];
            let (_, data_offset) = listing.offsets(probe.index);
            let show_end = data_offset + probe.size.min(PREVIEW_BYTES as u64);
            let save_end = data_offset + probe.size;
            let from_start = (scans[l].blob_offset_for(show_end), scans[l].blob_offset_for(save_end));
            let plan = |want| fetch_of(index, probe.index, want, layer.blob.len() as u64);
            let (show_plan, save_plan) = (plan(PREVIEW_BYTES as u64), plan(probe.size));
            let time_from_start = (
                time_from_start(&layer.blob, from_start.0),
                if save_end == show_end { None } else { Some(time_from_start(&layer.blob, from_start.1)) },
            );
            println!(
                "| {} | {} | {} | {} ({}) | {} | {} ({}) | {} | {:.1} ({:.1}) | {:.1} ({:.1}) |",
                layer.name,
                probe.label,
                human(probe.size),
                human(got.show.1),
                human(show_plan),
                human(from_start.0),
                human(got.save.1),
                human(save_plan),
                human(from_start.1),
                ms(got.show.0),
                ms(time_from_start.0),
                ms(got.save.0),
                ms(time_from_start.1.unwrap_or(time_from_start.0)),
            );
        }
    }
}

/// Part 3: index size and blob bytes per file for each spacing; prints the table and
/// returns each layer's row at the default spacing.
fn curve(layers: &[Layer], scans: &[Scan]) -> Vec<(&'static str, Row)> {
    let listing = &scans[0].listing;
    let sample = sample(listing);
    println!(
        "\n### Index size and blob bytes per file, by spacing ({} files of at most {} spread through the layer)\n",
        sample.len(),
        human(SAMPLE_MAX_FILE)
    );
    println!(
        "| layer | min | window_ppm | points | index | index / blob | of which windows | show: mean | show: max | \
         save: mean | save: max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut defaults = Vec::new();
    for (l, layer) in layers.iter().enumerate() {
        let spacings: Vec<Spacing> = if layer.name.starts_with("gzip") {
            MIN_SPACING
                .iter()
                .flat_map(|&min| WINDOW_PPM.iter().map(move |&window_ppm| Spacing { min, window_ppm }))
                .collect()
        } else {
            // zstd points are frame starts and carry no window: the spacing changes
            // nothing while frames are longer than `min`.
            vec![DEFAULT_SPACING]
        };
        for spacing in spacings {
            let index = if spacing == DEFAULT_SPACING {
                scans[l].index.clone()
            } else {
                Arc::new(index_of(&layer.blob, spacing, listing, &layer.digest))
            };
            let row = Row::of(&index, &sample, layer.blob.len() as u64);
            if spacing == DEFAULT_SPACING {
                defaults.push((layer.name, row.clone()));
            }
            let is_default = if spacing == DEFAULT_SPACING { " (default)" } else { "" };
            let window_ppm = if layer.name.starts_with("gzip") {
                format!("{}{is_default}", spacing.window_ppm)
            } else if layer.indexed {
                "— (frames)".to_owned()
            } else {
                "— (one frame: from the start only)".to_owned()
            };
            println!(
                "| {} | {} | {window_ppm} | {} | {} | {:.2}% | {:.2}% | {} | {} | {} | {} |",
                layer.name,
                human(spacing.min),
                index.points.len(),
                human(row.index_bytes),
                row.index_share * 100.0,
                row.window_share * 100.0,
                human(row.show_mean),
                human(row.show_max),
                human(row.save_mean),
                human(row.save_max),
            );
        }
    }

    defaults
}

fn met(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**not met**"
    }
}

fn mib_of(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// Bytes as B, KiB or MiB, whichever reads best.
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1 << 20 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", mib_of(bytes))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---- the layer -------------------------------------------------------------------------

struct Made {
    tar: Vec<u8>,
    gzip: Vec<u8>,
    files: usize,
    text_files: usize,
    largest: u64,
}

/// The tar as it is written, and its gzip, in one pass, so that files can be added
/// until the gzip reaches its size.
struct Tee {
    tar: Vec<u8>,
    gzip: flate2::write::GzEncoder<Vec<u8>>,
}

impl Write for Tee {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.tar.extend_from_slice(bytes);
        self.gzip.write_all(bytes)?;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.gzip.flush()
    }
}

/// Makes the layer: files added until its gzip reaches `target` bytes (see the module
/// docs for the mix).
fn make_layer(target: usize) -> Made {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let words: Vec<Vec<u8>> =
        (0..4096).map(|_| (0..2 + rng.below(9)).map(|_| b'a' + rng.below(26) as u8).collect()).collect();
    let tee = Tee {
        tar: Vec::with_capacity(target * 2),
        gzip: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6)),
    };
    let mut tar = tar::Builder::new(tee);
    // (size, text) of the large files; the n-th goes in once the gzip passes (n+1)/4 of
    // its size, so that they sit a quarter, half and three quarters of the way.
    let large = [(target / 8, false), (target / 5, true), (target / 10, false)];
    let (mut files, mut text_files, mut largest, mut placed) = (0usize, 0usize, 0u64, 0usize);
    let mut contents = Vec::new();
    while tar.get_ref().gzip.get_ref().len() < target {
        let done = tar.get_ref().gzip.get_ref().len();
        let (size, text, path) = match large.get(placed).filter(|_| done >= (placed + 1) * target / 4) {
            Some(&(size, text)) => {
                placed += 1;
                (size as u64, text, format!("opt/data/large-{placed}.{}", if text { "log" } else { "bin" }))
            }
            None => {
                let text = rng.below(10) < 6;
                let size = if rng.below(100) < 85 {
                    rng.log_uniform(64, 16 << 10)
                } else {
                    rng.log_uniform(16 << 10, 1 << 20)
                };
                let path = if text {
                    format!("usr/share/doc/pkg{:03}/file-{files:05}.txt", files % 300)
                } else {
                    format!("usr/lib/pkg{:03}/lib-{files:05}.so", files % 300)
                };
                (size, text, path)
            }
        };
        contents.clear();
        if text {
            while (contents.len() as u64) < size {
                contents.extend_from_slice(&words[rng.below(words.len() as u64) as usize]);
                contents.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
            }
            contents.truncate(size as usize);
            text_files += 1;
        } else {
            while (contents.len() as u64) < size {
                contents.extend_from_slice(&rng.next().to_le_bytes());
            }
            contents.truncate(size as usize);
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, &path, &contents[..]).expect("append a file");
        files += 1;
        largest = largest.max(size);
    }
    let tee = tar.into_inner().expect("finish the tar");
    let gzip = tee.gzip.finish().expect("finish the gzip");
    Made { tar: tee.tar, gzip, files, text_files, largest }
}

/// One compression of the layer, as served.
struct Layer {
    name: &'static str,
    media_type: &'static str,
    blob: Bytes,
    digest: Digest,
    /// Whether an index can start a read anywhere but at the blob's start.
    indexed: bool,
}

impl Layer {
    fn new(name: &'static str, media_type: &'static str, blob: Bytes, indexed: bool) -> Layer {
        let digest = digest(&blob).parse().expect("a digest");
        Layer { name, media_type, blob, digest, indexed }
    }
}

// ---- 1. listing ------------------------------------------------------------------------

/// How the blob is decompressed for a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// The compression crate's own streaming decoder: for gzip, flate2's
    /// `MultiGzDecoder`, what layerpipe used before it could resume.
    Crate,
    /// `Decompressor::new`: layerpipe's decoder, nothing recorded.
    New,
    /// `Decompressor::recording(.., DEFAULT_SPACING)`: what a first listing does.
    Recording,
}

impl How {
    fn label(self, layer: &str) -> &'static str {
        match (self, layer.starts_with("gzip")) {
            (How::Crate, true) => "flate2 `MultiGzDecoder` (before indexes; reference)",
            (How::Crate, false) => "zstd crate `write::Decoder` (reference)",
            (How::New, _) => "`Decompressor::new` (no index)",
            (How::Recording, _) => "`Decompressor::recording(.., DEFAULT_SPACING)`",
        }
    }
}

/// CPU time this thread has used: the first field of `/proc/thread-self/schedstat`, in
/// nanoseconds (`/proc/self/stat` counts whole 10 ms ticks, too coarse for a ratio).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat");
    Duration::from_nanos(stat.split_whitespace().next().and_then(|n| n.parse().ok()).expect("run time"))
}

/// Lists `blob` on this thread: (wall, CPU, entries).
fn list_in_memory(blob: &[u8], how: How) -> (Duration, Duration, usize) {
    let (t, cpu) = (Instant::now(), thread_cpu());
    let mut scanner = Scanner::new(ListingBuilder::default());
    match how {
        How::Crate if Compression::sniff(blob) == Compression::Gzip => {
            let mut d = flate2::write::MultiGzDecoder::new(&mut scanner);
            for step in blob.chunks(WRITE) {
                d.write_all(step).expect("gunzip");
            }
            d.try_finish().expect("finish gzip");
        }
        How::Crate => {
            let mut d = zstd::stream::write::Decoder::new(&mut scanner).expect("zstd decoder");
            for step in blob.chunks(WRITE) {
                d.write_all(step).expect("unzstd");
            }
            d.flush().expect("finish zstd");
        }
        How::New | How::Recording => {
            let mut d = if how == How::New {
                Decompressor::new(&mut scanner)
            } else {
                Decompressor::recording(&mut scanner, DEFAULT_SPACING)
            };
            for step in blob.chunks(WRITE) {
                d.write(step).expect("decompress");
            }
            d.finish().expect("finish");
            // Taking what was recorded is part of the cost.
            std::hint::black_box(d.recorded());
        }
    }
    let (builder, _) = scanner.finish();
    let entries = builder.finish(Summary::default()).len();
    (t.elapsed(), thread_cpu() - cpu, entries)
}

// ---- what a reading knows --------------------------------------------------------------

/// One layer read once, as a first listing reads it.
struct Scan {
    listing: Arc<Listing>,
    /// Its index at the default spacing.
    index: Arc<LayerIndex>,
    tar_bytes: u64,
    /// `(blob bytes taken, tar bytes out)` after each write of [`FINE`] bytes.
    progress: Vec<(u64, u64)>,
}

/// Blob bytes per write while noting progress: the precision of "from the start".
const FINE: usize = 16 * 1024;

impl Scan {
    fn of(blob: &Bytes) -> Scan {
        let mut scanner = Scanner::new(ListingBuilder::default());
        let mut d = Decompressor::recording(&mut scanner, DEFAULT_SPACING);
        let mut progress = Vec::with_capacity(blob.len() / FINE + 1);
        for step in blob.chunks(FINE) {
            d.write(step).expect("decompress");
            progress.push((d.taken(), d.sink().position()));
        }
        d.finish().expect("finish");
        let compression = d.compression();
        let recorded = d.recorded();
        drop(d);
        let tar_bytes = scanner.position();
        let (builder, _) = scanner.finish();
        let summary = Summary { compression, compressed_bytes: blob.len() as u64, tar_bytes, stopped: None };
        let listing = Arc::new(builder.finish(summary));
        let digest = digest(blob).parse().expect("a digest");
        let index = Arc::new(LayerIndex {
            digest,
            listing: listing.clone(),
            points: recorded.points,
            marks: recorded.marks,
            verified: true,
            origin: format!("127.0.0.1:5000/{REPO}"),
        });
        Scan { listing, index, tar_bytes, progress }
    }

    /// The blob bytes a read from the start takes before the tar stream reaches `tar`.
    fn blob_offset_for(&self, tar: u64) -> u64 {
        let i = self.progress.partition_point(|&(_, out)| out < tar);
        self.progress.get(i).map_or_else(|| self.progress.last().map_or(0, |p| p.0), |p| p.0)
    }
}

/// The index of `blob` recorded at `spacing`, with `listing` (the same for every spacing).
fn index_of(blob: &[u8], spacing: Spacing, listing: &Arc<Listing>, digest: &Digest) -> LayerIndex {
    let mut d = Decompressor::recording(io::sink(), spacing);
    for step in blob.chunks(WRITE) {
        d.write(step).expect("decompress");
    }
    d.finish().expect("finish");
    let recorded = d.recorded();
    LayerIndex {
        digest: digest.clone(),
        listing: listing.clone(),
        points: recorded.points,
        marks: recorded.marks,
        verified: true,
        origin: format!("127.0.0.1:5000/{REPO}"),
    }
}

/// Blob bytes the read of entry `i`'s first `want` bytes asks for: the plan's range, to
/// the blob's end when it has no end.
fn fetch_of(index: &LayerIndex, i: usize, want: u64, blob_len: u64) -> u64 {
    let plan = index.plan(i, want).expect("a plan");
    plan.fetch_bytes().unwrap_or(blob_len - plan.start)
}

/// Wall time of decompressing and scanning `blob` from its start up to `end`, on this
/// thread: a read from the start, less the network. Best of [`RUNS`].
fn time_from_start(blob: &[u8], end: u64) -> Duration {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let mut scanner = Scanner::new(ListingBuilder::default());
            let mut d = Decompressor::new(&mut scanner);
            for step in blob[..end as usize].chunks(WRITE) {
                d.write(step).expect("decompress");
            }
            drop(d);
            std::hint::black_box(scanner.position());
            t.elapsed()
        })
        .min()
        .expect("a run")
}

// ---- 2. one file through layerpipe -----------------------------------------------------

/// A file shown and saved through layerpipe.
struct Probe {
    label: &'static str,
    index: usize,
    path: String,
    size: u64,
}

/// The first, middle and last file in archive order, and the largest.
fn probes(listing: &Listing) -> Vec<Probe> {
    let files: Vec<usize> = listing.entries().filter(|e| e.entry.kind == Kind::File).map(|e| e.index).collect();
    let largest = listing.by_size().next().expect("an entry").index;
    [
        ("first", files[0]),
        ("middle", files[files.len() / 2]),
        ("last", *files.last().expect("a file")),
        ("largest", largest),
    ]
    .into_iter()
    .map(|(label, index)| {
        let e = listing.entry(index);
        Probe { label, index, path: String::from_utf8(e.path().to_vec()).expect("ASCII"), size: e.entry.size }
    })
    .collect()
}

/// Best time and most blob bytes sent, for a page and a save.
#[derive(Clone, Copy)]
struct Served {
    show: (Duration, u64),
    save: (Duration, u64),
}

/// Lists each layer once through layerpipe, then shows and saves each probe, [`RUNS`]
/// times in turn, counting the blob bytes the fake registry sends for each.
async fn through_layerpipe(layers: &[Layer], tar: &[u8], listing: &Listing, probes: &[Probe]) -> Vec<Vec<Served>> {
    let config = Bytes::from_static(b"{}");
    let refs: Vec<(&str, &[u8])> = layers.iter().map(|l| (l.media_type, &l.blob[..])).collect();
    let manifest = oci_manifest(&config, &refs);
    let mut blobs = HashMap::new();
    blobs.insert(digest(&config), FakeBlob::new(config.clone()));
    for l in layers {
        blobs.insert(l.digest.as_str().to_owned(), FakeBlob::new(l.blob.clone()));
    }
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    let image = layerpipe::query::encode(&format!("{}/{REPO}:v1", fake.host()));
    let queries: Vec<String> = layers
        .iter()
        .enumerate()
        .map(|(n, l)| {
            let (digest, mt) = (layerpipe::query::encode(l.digest.as_str()), layerpipe::query::encode(l.media_type));
            format!("image={image}&digest={digest}&layer={}&mt={mt}", n + 1)
        })
        .collect();
    for (l, query) in queries.iter().enumerate() {
        let before = fake.blob_bytes_sent();
        let page = fetch(&lp.url(&format!("/files?{query}")), &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert!(!page.text().contains("id=\"stopped\""), "{}: the listing is complete", layers[l].name);
        assert_eq!(settled(&fake).await - before, layers[l].blob.len() as u64, "a listing reads the blob once");
    }
    let expected: Vec<String> = probes
        .iter()
        .map(|p| {
            let (_, data) = listing.offsets(p.index);
            sha256_hex(&tar[data as usize..(data + p.size) as usize])
        })
        .collect();
    let mut best =
        vec![vec![Served { show: (Duration::MAX, 0), save: (Duration::MAX, 0) }; probes.len()]; layers.len()];
    for _ in 0..RUNS {
        for (l, query) in queries.iter().enumerate() {
            for (p, probe) in probes.iter().enumerate() {
                let url = lp.url(&format!("/fs/{}?{query}", probe.path));
                let before = fake.blob_bytes_sent();
                let t = Instant::now();
                let page = fetch(&url, &[]).await;
                let took = t.elapsed();
                assert_eq!(page.status, StatusCode::OK, "{}", page.text());
                assert!(page.text().contains("id=\"preview\""), "{} {}: a preview", layers[l].name, probe.label);
                let sent = settled(&fake).await - before;
                let show = &mut best[l][p].show;
                *show = (show.0.min(took), show.1.max(sent));

                let url = lp.url(&format!("/save/{}?{query}", probe.path));
                let before = fake.blob_bytes_sent();
                let t = Instant::now();
                let (status, _, sha, len) = fetch_hashed(&url).await.expect("a saved file");
                let took = t.elapsed();
                assert_eq!((status, len), (StatusCode::OK, probe.size), "{} {}", layers[l].name, probe.label);
                assert_eq!(sha, expected[p], "{} {}: the file's own bytes", layers[l].name, probe.label);
                let sent = settled(&fake).await - before;
                let save = &mut best[l][p].save;
                *save = (save.0.min(took), save.1.max(sent));
            }
        }
    }
    best
}

/// The fake's count of blob bytes sent, once it has stopped moving: a body layerpipe
/// stopped reading is still sent until the connection's close reaches the fake.
async fn settled(fake: &FakeRegistry) -> u64 {
    let mut last = fake.blob_bytes_sent();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = fake.blob_bytes_sent();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

// ---- 3. the curve ----------------------------------------------------------------------

/// [`SAMPLE`] files of at most [`SAMPLE_MAX_FILE`], evenly spread in archive order.
fn sample(listing: &Listing) -> Vec<(usize, u64)> {
    let files: Vec<(usize, u64)> = listing
        .entries()
        .filter(|e| e.entry.kind == Kind::File && e.entry.size <= SAMPLE_MAX_FILE)
        .map(|e| (e.index, e.entry.size))
        .collect();
    let n = SAMPLE.min(files.len());
    (0..n).map(|k| files[k * (files.len() - 1) / (n - 1).max(1)]).collect()
}

/// One spacing's figures.
#[derive(Clone)]
struct Row {
    index_bytes: u64,
    index_share: f64,
    window_share: f64,
    show_mean: u64,
    show_max: u64,
    save_mean: u64,
    save_max: u64,
}

impl Row {
    fn of(index: &LayerIndex, sample: &[(usize, u64)], blob_len: u64) -> Row {
        let index_bytes = codec::encode(index).len() as u64;
        let show: Vec<u64> = sample.iter().map(|&(i, _)| fetch_of(index, i, PREVIEW_BYTES as u64, blob_len)).collect();
        let save: Vec<u64> = sample.iter().map(|&(i, size)| fetch_of(index, i, size, blob_len)).collect();
        let mean = |v: &[u64]| v.iter().sum::<u64>() / v.len().max(1) as u64;
        let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
        Row {
            index_bytes,
            index_share: index_bytes as f64 / blob_len as f64,
            window_share: index.window_bytes() as f64 / blob_len as f64,
            show_mean: mean(&show),
            show_max: max(&show),
            save_mean: mean(&save),
            save_max: max(&save),
        }
    }
}
