//! Mount options as the spec (and mount(8)) spell them, to `mount(2)` flags and data.

/// The parsed `options` of one mount.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags to set.
    pub flags: libc::c_ulong,
    /// Propagation changes (`MS_SHARED`, `MS_PRIVATE | MS_REC`, ...), applied after.
    pub propagation: Vec<libc::c_ulong>,
    /// Filesystem-specific options (`mode=755`, `size=64k`), joined with commas.
    pub data: Vec<String>,
    /// runc's `tmpcopyup`: copy the directory's contents into the new tmpfs.
    pub tmpcopyup: bool,
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Self {
        let mut o = MountOptions::default();
        for opt in options {
            let (set, clear): (libc::c_ulong, libc::c_ulong) = match opt.as_str() {
                "defaults" => (0, 0),
                "ro" => (libc::MS_RDONLY, 0),
                "rw" => (0, libc::MS_RDONLY),
                "suid" => (0, libc::MS_NOSUID),
                "nosuid" => (libc::MS_NOSUID, 0),
                "dev" => (0, libc::MS_NODEV),
                "nodev" => (libc::MS_NODEV, 0),
                "exec" => (0, libc::MS_NOEXEC),
                "noexec" => (libc::MS_NOEXEC, 0),
                "sync" => (libc::MS_SYNCHRONOUS, 0),
                "async" => (0, libc::MS_SYNCHRONOUS),
                "dirsync" => (libc::MS_DIRSYNC, 0),
                "remount" => (libc::MS_REMOUNT, 0),
                "mand" => (libc::MS_MANDLOCK, 0),
                "nomand" => (0, libc::MS_MANDLOCK),
                "atime" => (0, libc::MS_NOATIME),
                "noatime" => (libc::MS_NOATIME, 0),
                "diratime" => (0, libc::MS_NODIRATIME),
                "nodiratime" => (libc::MS_NODIRATIME, 0),
                "relatime" => (libc::MS_RELATIME, 0),
                "norelatime" => (0, libc::MS_RELATIME),
                "strictatime" => (libc::MS_STRICTATIME, 0),
                "nostrictatime" => (0, libc::MS_STRICTATIME),
                "lazytime" => (libc::MS_LAZYTIME, 0),
                "nolazytime" => (0, libc::MS_LAZYTIME),
                "iversion" => (libc::MS_I_VERSION, 0),
                "noiversion" => (0, libc::MS_I_VERSION),
                "silent" => (libc::MS_SILENT, 0),
                "loud" => (0, libc::MS_SILENT),
                "bind" => (libc::MS_BIND, 0),
                "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    o.propagation
                        .push(propagation(opt).expect("listed propagation names parse"));
                    continue;
                }
                "tmpcopyup" => {
                    o.tmpcopyup = true;
                    continue;
                }
                // Recursive and idmapped variants need mount_setattr; not supported yet.
                "idmap" | "ridmap" | "rro" | "rrw" | "rnosuid" | "rsuid" | "rnodev" | "rdev"
                | "rnoexec" | "rexec" | "rnoatime" | "ratime" | "rrelatime" | "rnorelatime"
                | "rstrictatime" | "rnostrictatime" | "rnodiratime" | "rdiratime"
                | "rnosymfollow" | "rsymfollow" | "nosymfollow" | "symfollow" => continue,
                _ => {
                    o.data.push(opt.clone());
                    continue;
                }
            };
            o.flags = (o.flags | set) & !clear;
        }
        o
    }

    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// A propagation name (`rootfsPropagation`, mount options) as mount flags.
pub fn propagation(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOptions {
        MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let o = parse(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rbind",
            "rslave",
            "ro",
        ]);
        assert_eq!(
            o.flags,
            libc::MS_NOSUID | libc::MS_STRICTATIME | libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY
        );
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, [libc::MS_SLAVE | libc::MS_REC]);
        assert!(o.is_bind());
    }

    #[test]
    fn later_options_override_earlier_ones() {
        assert_eq!(parse(&["ro", "rw"]).flags, 0);
        assert_eq!(parse(&["nosuid", "suid", "nodev"]).flags, libc::MS_NODEV);
    }
}
