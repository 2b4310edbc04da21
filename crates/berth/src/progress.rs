//! Pull/push/load progress: a bar per layer on a terminal, Docker-style plain lines
//! otherwise (CI logs, pipes), nothing with `-q`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use berth_image::digest::Digest;
use berth_image::progress::{LayerEvent, Progress, Silent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Picks the reporter for this invocation.
pub fn reporter(quiet: bool, no_bars: bool) -> Arc<dyn Progress> {
    if quiet {
        Arc::new(Silent)
    } else if !no_bars && std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Lines)
    }
}

fn event_text(event: LayerEvent) -> &'static str {
    match event {
        LayerEvent::AlreadyExists => "Already exists",
        LayerEvent::Downloading => "Downloading",
        LayerEvent::Extracting => "Extracting",
        LayerEvent::Complete => "Pull complete",
        LayerEvent::Pushing => "Pushing",
        LayerEvent::Pushed => "Pushed",
        LayerEvent::Mounted => "Layer already exists",
    }
}

/// Plain lines on stdout, as `docker pull` prints when not on a terminal.
struct Lines;

impl Progress for Lines {
    fn layer(&self, digest: &Digest, _size: u64, event: LayerEvent) {
        println!("{}: {}", digest.short(), event_text(event));
    }
    fn bytes(&self, _: &Digest, _: u64) {}
    fn message(&self, text: &str) {
        println!("{text}");
    }
}

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Bars {
    fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, digest: &Digest, size: u64) -> ProgressBar {
        let mut bars = self.bars.lock().expect("progress table poisoned");
        bars.entry(digest.clone())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<14} [{bar:30}] {bytes}/{total_bytes}",
                    )
                    .expect("static template is valid")
                    .progress_chars("=> "),
                );
                bar.set_prefix(digest.short().to_string());
                bar
            })
            .clone()
    }
}

impl Progress for Bars {
    fn layer(&self, digest: &Digest, size: u64, event: LayerEvent) {
        let bar = self.bar(digest, size);
        bar.set_message(event_text(event));
        if matches!(
            event,
            LayerEvent::AlreadyExists
                | LayerEvent::Complete
                | LayerEvent::Pushed
                | LayerEvent::Mounted
        ) {
            bar.set_position(size);
            bar.finish();
        }
    }

    fn bytes(&self, digest: &Digest, done: u64) {
        if let Some(bar) = self
            .bars
            .lock()
            .expect("progress table poisoned")
            .get(digest)
        {
            bar.set_position(done);
        }
    }

    fn message(&self, text: &str) {
        let _ = self.multi.println(text);
    }
}
