//! Reads the osinfo database (`<dir>/os/<vendor>/<os>.xml`, the format libosinfo defines):
//! an OS's short ids, name, family, minimum resources, devices and firmware, following
//! `derives-from` for what an entry inherits. A small XML tokenizer suffices: the files are
//! machine-written, without DTDs or CDATA.

use std::io;
use std::path::{Path, PathBuf};

use super::{OsFamily, OsVariant, Source};

#[derive(Debug, thiserror::Error)]
pub enum OsinfoDbError {
    #[error("read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What one `<os>` element says directly.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct OsRecord {
    id: String,
    short_ids: Vec<String>,
    name: Option<String>,
    family: Option<String>,
    derives_from: Vec<String>,
    min_vcpus: Option<u32>,
    min_ram: Option<u64>,
    min_storage: Option<u64>,
    virtio: bool,
    bios_unsupported: bool,
}

/// Looks `short_id` up; `None` when the database does not know it.
pub(super) fn lookup(dir: &Path, short_id: &str) -> Result<Option<OsVariant>, OsinfoDbError> {
    let files = read_db(&dir.join("os"))?;
    let needle = format!("<short-id>{short_id}</short-id>");
    let Some(found) = files
        .iter()
        .filter(|t| t.contains(&needle))
        .flat_map(|t| parse_os_records(t))
        .find(|r| r.short_ids.iter().any(|s| s == short_id))
    else {
        return Ok(None);
    };
    // Follow derives-from for what the entry does not say itself.
    let by_id = |id: &str| -> Option<OsRecord> {
        let needle = format!("<os id=\"{id}\"");
        files
            .iter()
            .filter(|t| t.contains(&needle))
            .flat_map(|t| parse_os_records(t))
            .find(|r| r.id == id)
    };
    let mut merged = found.clone();
    let mut cur = found;
    for _ in 0..32 {
        let Some(parent) = cur.derives_from.first().and_then(|id| by_id(id)) else {
            break;
        };
        merged.min_vcpus = merged.min_vcpus.or(parent.min_vcpus);
        merged.min_ram = merged.min_ram.or(parent.min_ram);
        merged.min_storage = merged.min_storage.or(parent.min_storage);
        merged.family = merged.family.or(parent.family.clone());
        merged.virtio |= parent.virtio;
        cur = parent;
    }
    let family = match merged.family.as_deref() {
        Some("linux") => OsFamily::Linux,
        Some("winnt") | Some("win9x") | Some("win16") => OsFamily::Windows,
        _ => OsFamily::Other,
    };
    Ok(Some(OsVariant {
        short_id: short_id.to_string(),
        name: merged.name.unwrap_or_else(|| short_id.to_string()),
        family,
        min_memory_mib: merged.min_ram.map(|b| b >> 20),
        min_storage_bytes: merged.min_storage,
        min_vcpus: merged.min_vcpus,
        // Windows has no virtio drivers in the box, whatever devices the database lists.
        virtio: merged.virtio && family != OsFamily::Windows,
        requires_uefi: merged.bios_unsupported,
        source: Source::OsinfoDb,
    }))
}

fn read_db(os_dir: &Path) -> Result<Vec<String>, OsinfoDbError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OsinfoDbError::Io { path, source }
    };
    let mut out = Vec::new();
    for vendor in std::fs::read_dir(os_dir).map_err(io_err(os_dir))? {
        let vendor = vendor.map_err(io_err(os_dir))?.path();
        if !vendor.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&vendor).map_err(io_err(&vendor))? {
            let p = f.map_err(io_err(&vendor))?.path();
            if p.extension().is_some_and(|e| e == "xml") && p.is_file() {
                out.push(std::fs::read_to_string(&p).map_err(io_err(&p))?);
            }
        }
    }
    Ok(out)
}

/// A token of the XML subset osinfo files use.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Start {
        name: &'a str,
        attrs: Vec<(&'a str, String)>,
        empty: bool,
    },
    End(&'a str),
    Text(String),
}

fn tokens(xml: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = xml;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.push(Token::Text(unescape(rest)));
            break;
        };
        if lt > 0 {
            out.push(Token::Text(unescape(&rest[..lt])));
        }
        rest = &rest[lt..];
        let skip_to = |r: &str, end: &str| r.find(end).map_or(r.len(), |i| i + end.len());
        if rest.starts_with("<!--") {
            rest = &rest[skip_to(rest, "-->")..];
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") {
            rest = &rest[skip_to(rest, ">")..];
            continue;
        }
        let gt = rest.find('>').unwrap_or(rest.len() - 1);
        let inner = &rest[1..gt];
        rest = &rest[(gt + 1).min(rest.len())..];
        if let Some(name) = inner.strip_prefix('/') {
            out.push(Token::End(name.trim()));
            continue;
        }
        let empty = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let name_end = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        let name = &inner[..name_end];
        let mut attrs = Vec::new();
        let mut a = &inner[name_end..];
        while let Some(eq) = a.find('=') {
            let key = a[..eq].trim();
            let after = a[eq + 1..].trim_start();
            let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                break;
            };
            let Some(close) = after[1..].find(quote) else {
                break;
            };
            attrs.push((key, unescape(&after[1..1 + close])));
            a = &after[close + 2..];
        }
        out.push(Token::Start { name, attrs, empty });
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The `<os>` elements of one file.
fn parse_os_records(xml: &str) -> Vec<OsRecord> {
    let mut out = Vec::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut cur: Option<OsRecord> = None;
    // The arch of the `<resources>` being read, and whether it applies to x86_64.
    let mut resources_apply = false;
    let mut text = String::new();
    for t in tokens(xml) {
        match t {
            Token::Start { name, attrs, empty } => {
                let attr = |k: &str| attrs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
                let depth_in_os = stack
                    .iter()
                    .rposition(|n| *n == "os")
                    .map(|i| stack.len() - i);
                match (name, depth_in_os) {
                    ("os", None) => {
                        cur = Some(OsRecord {
                            id: attr("id").unwrap_or_default(),
                            ..Default::default()
                        })
                    }
                    ("derives-from", Some(1)) => {
                        if let (Some(r), Some(id)) = (cur.as_mut(), attr("id")) {
                            r.derives_from.push(id);
                        }
                    }
                    ("resources", Some(1)) => {
                        resources_apply = matches!(attr("arch").as_deref(), Some("all" | "x86_64"));
                    }
                    ("device", Some(2)) if stack.last() == Some(&"devices") => {
                        let supported = attr("supported").as_deref() != Some("false");
                        if let (Some(r), Some(id)) = (cur.as_mut(), attr("id")) {
                            if supported && id.starts_with("http://pcisig.com/pci/1af4/") {
                                r.virtio = true;
                            }
                        }
                    }
                    ("firmware", Some(1)) => {
                        let x86 = matches!(attr("arch").as_deref(), Some("x86_64" | "all"));
                        if let Some(r) = cur.as_mut() {
                            if x86
                                && attr("type").as_deref() == Some("bios")
                                && attr("supported").as_deref() == Some("false")
                            {
                                r.bios_unsupported = true;
                            }
                        }
                    }
                    _ => {}
                }
                if !empty {
                    let lang = attrs.iter().any(|(k, _)| *k == "xml:lang");
                    stack.push(if lang { "-lang-" } else { name });
                    text.clear();
                }
            }
            Token::Text(s) => text.push_str(&s),
            Token::End(name) => {
                let value = text.trim().to_string();
                text.clear();
                let path: Vec<&str> = stack.iter().skip_while(|n| **n != "os").copied().collect();
                if let Some(r) = cur.as_mut() {
                    match path.as_slice() {
                        ["os", "short-id"] => r.short_ids.push(value),
                        ["os", "name"] if r.name.is_none() => r.name = Some(value),
                        ["os", "family"] => r.family = Some(value),
                        ["os", "resources", "minimum", field] if resources_apply => {
                            let n: Option<u64> = value.parse().ok();
                            match *field {
                                "n-cpus" => r.min_vcpus = n.map(|n| n as u32),
                                "ram" => r.min_ram = n,
                                "storage" => r.min_storage = n,
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                }
                stack.pop();
                if name == "os" && stack.iter().all(|n| *n != "os") {
                    out.extend(cur.take());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<libosinfo version="0.0.1">
  <!-- a comment with <tags> -->
  <os id="http://example.org/os/1">
    <short-id>exos1</short-id>
    <name>Example OS 1</name>
    <family>linux</family>
    <devices>
      <device id="http://pcisig.com/pci/1af4/1001"/>
    </devices>
    <resources arch="all">
      <minimum><n-cpus>1</n-cpus><ram>1073741824</ram><storage>10737418240</storage></minimum>
    </resources>
  </os>
</libosinfo>"#;

    const CHILD: &str = r#"<libosinfo version="0.0.1">
  <os id="http://example.org/os/2">
    <short-id>exos2</short-id>
    <short-id>exos-latest</short-id>
    <name>Example &amp; OS 2</name>
    <name xml:lang="de">Beispiel 2</name>
    <derives-from id="http://example.org/os/1"/>
    <firmware arch="x86_64" type="bios" supported="false"/>
    <resources arch="ppc64le">
      <minimum><ram>99</ram></minimum>
    </resources>
    <resources arch="x86_64">
      <minimum><ram>2147483648</ram></minimum>
    </resources>
    <variant id="server"><name>Server</name></variant>
  </os>
</libosinfo>"#;

    #[test]
    fn records_parse() {
        let r = &parse_os_records(CHILD)[0];
        assert_eq!(r.id, "http://example.org/os/2");
        assert_eq!(r.short_ids, ["exos2", "exos-latest"]);
        assert_eq!(r.name.as_deref(), Some("Example & OS 2"));
        assert_eq!(r.min_ram, Some(2147483648));
        assert_eq!(r.min_storage, None);
        assert!(r.bios_unsupported);
        assert!(!r.virtio);
        let p = &parse_os_records(PARENT)[0];
        assert!(p.virtio);
        assert_eq!(p.min_vcpus, Some(1));
    }

    #[test]
    fn lookup_follows_derives_from() {
        let dir = std::env::temp_dir().join(format!("berth-osinfo-{}", std::process::id()));
        let vendor = dir.join("os/example.org");
        std::fs::create_dir_all(&vendor).unwrap();
        std::fs::write(vendor.join("exos-1.xml"), PARENT).unwrap();
        std::fs::write(vendor.join("exos-2.xml"), CHILD).unwrap();
        let v = lookup(&dir, "exos-latest").unwrap().unwrap();
        assert_eq!(v.short_id, "exos-latest");
        assert_eq!(v.min_memory_mib, Some(2048));
        assert_eq!(v.min_storage_bytes, Some(10 << 30));
        assert_eq!(v.min_vcpus, Some(1));
        assert_eq!(v.family, OsFamily::Linux);
        assert!(v.virtio && v.requires_uefi);
        assert_eq!(v.source, Source::OsinfoDb);
        assert!(lookup(&dir, "nope").unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn installed_database_if_any() {
        // Real data when osinfo-db is installed (CI installs it); a no-op otherwise.
        let dir = Path::new("/usr/share/osinfo");
        if !dir.join("os/ubuntu.com").is_dir() {
            return;
        }
        let v = lookup(dir, "ubuntu20.04").unwrap().unwrap();
        assert_eq!(v.min_memory_mib, Some(2048));
        assert!(v.virtio);
        let w = lookup(dir, "win10").unwrap().unwrap();
        assert_eq!(w.family, OsFamily::Windows);
        assert!(!w.virtio);
    }
}
