//! Container logs. One line per output line, as Kubernetes' CRI logs are written:
//! `<RFC 3339 nanos> <stdout|stderr> <F|P> <text>`, where `P` marks a partial line (the
//! output did not end in a newline yet). Plain text lines make `logs --tail N` a short
//! backwards scan from the end of the file and `logs -f` a poll of its size.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Appends container output to the log file (owned by the supervisor).
pub struct LogWriter {
    file: File,
}

impl LogWriter {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Self { file })
    }

    /// Records a chunk of output; each line gets its own record.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        let mut out = Vec::with_capacity(data.len() + 48);
        for piece in data.split_inclusive(|b| *b == b'\n') {
            let (text, tag) = match piece.strip_suffix(b"\n") {
                Some(t) => (t, 'F'),
                None => (piece, 'P'),
            };
            out.extend_from_slice(now.as_bytes());
            out.push(b' ');
            out.extend_from_slice(stream.name().as_bytes());
            out.push(b' ');
            out.push(tag as u8);
            out.push(b' ');
            out.extend_from_slice(text);
            out.push(b'\n');
        }
        self.file.write_all(&out)
    }
}

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: &'a str,
    pub stream: Stream,
    pub partial: bool,
    pub text: &'a [u8],
}

pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = parts.next()? == b"P";
    let text = parts.next().unwrap_or(b"");
    Some(Record {
        time,
        stream,
        partial,
        text,
    })
}

/// What `logs` should show.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only records at or after this time.
    pub since: Option<SystemTime>,
    pub timestamps: bool,
    pub follow: bool,
}

/// Byte offset where the last `n` complete lines of the file start.
fn tail_offset(file: &mut File, n: usize) -> io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; 64 << 10];
    // The file ends with a newline: the first one found from the end closes the last line.
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut buf[..step as usize])?;
        for i in (0..step as usize).rev() {
            if buf[i] == b'\n' {
                newlines += 1;
                if newlines == n + 1 {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

/// Writes the container's log to `stdout`/`stderr` per `options`. With `follow`, keeps
/// reading as the file grows until `running()` says the container has stopped.
pub fn show(
    path: &Path,
    options: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    running: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && options.follow => {
            // Not written yet: wait for it while the container runs.
            loop {
                if let Ok(f) = File::open(path) {
                    break f;
                }
                if !running() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let start = match options.tail {
        Some(n) => tail_offset(&mut file, n)?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start))?;
    let since = options
        .since
        .map(|t| humantime::format_rfc3339_nanos(t).to_string());
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            if !options.follow {
                return Ok(());
            }
            // Keep a half-written record for the next round.
            let keep = line.len() as i64;
            let still = running();
            stdout.flush()?;
            stderr.flush()?;
            if !still {
                // One last read after the container stopped, for what it wrote last.
                reader.seek_relative(-keep)?;
                let mut rest = Vec::new();
                reader.read_to_end(&mut rest)?;
                for l in rest.split_inclusive(|b| *b == b'\n') {
                    emit(l, options, since.as_deref(), stdout, stderr)?;
                }
                return Ok(());
            }
            reader.seek_relative(-keep)?;
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        emit(&line, options, since.as_deref(), stdout, stderr)?;
    }
}

fn emit(
    line: &[u8],
    options: &LogOptions,
    since: Option<&str>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> io::Result<()> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let Some(rec) = parse(line) else {
        return Ok(());
    };
    // RFC 3339 in UTC with fixed nanosecond width compares correctly as text.
    if since.is_some_and(|s| rec.time < s) {
        return Ok(());
    }
    let out: &mut dyn Write = match rec.stream {
        Stream::Stdout => stdout,
        Stream::Stderr => stderr,
    };
    if options.timestamps {
        out.write_all(rec.time.as_bytes())?;
        out.write_all(b" ")?;
    }
    out.write_all(rec.text)?;
    if !rec.partial {
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("berth-logs-{}-{name}", std::process::id()))
    }

    fn render(path: &Path, options: &LogOptions) -> (String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        show(path, options, &mut o, &mut e, &mut || false).unwrap();
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    #[test]
    fn lines_partials_and_streams_round_trip() {
        let p = temp("rt");
        let _ = std::fs::remove_file(&p);
        let mut w = LogWriter::open(&p).unwrap();
        w.write(Stream::Stdout, b"one\ntwo\nthr").unwrap();
        w.write(Stream::Stdout, b"ee\n").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        let (out, err) = render(&p, &LogOptions::default());
        assert_eq!(out, "one\ntwo\nthree\n");
        assert_eq!(err, "oops\n");
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn tail_reads_only_the_end() {
        let p = temp("tail");
        let _ = std::fs::remove_file(&p);
        let mut w = LogWriter::open(&p).unwrap();
        for i in 0..5000 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let (out, _) = render(
            &p,
            &LogOptions {
                tail: Some(3),
                ..LogOptions::default()
            },
        );
        assert_eq!(out, "line 4997\nline 4998\nline 4999\n");
        let (out, _) = render(
            &p,
            &LogOptions {
                tail: Some(0),
                ..LogOptions::default()
            },
        );
        assert_eq!(out, "");
        let (out, _) = render(
            &p,
            &LogOptions {
                tail: Some(10_000),
                ..LogOptions::default()
            },
        );
        assert_eq!(out.lines().count(), 5000);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn timestamps_and_since() {
        let p = temp("since");
        let _ = std::fs::remove_file(&p);
        let mut w = LogWriter::open(&p).unwrap();
        w.write(Stream::Stdout, b"early\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let cut = SystemTime::now();
        w.write(Stream::Stdout, b"late\n").unwrap();
        let (out, _) = render(
            &p,
            &LogOptions {
                since: Some(cut),
                ..LogOptions::default()
            },
        );
        assert_eq!(out, "late\n");
        let (out, _) = render(
            &p,
            &LogOptions {
                timestamps: true,
                ..LogOptions::default()
            },
        );
        assert!(
            out.lines().all(|l| l.contains('T') && l.contains("Z ")),
            "{out}"
        );
        let _ = std::fs::remove_file(&p);
    }
}
