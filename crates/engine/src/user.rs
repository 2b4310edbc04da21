//! `--user` / the image's `User`: `name`, `uid`, `name:group`, `uid:gid`, resolved against
//! the container's own /etc/passwd and /etc/group, as Docker does.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    let text = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn groups(rootfs: &Path) -> Vec<(String, u32, Vec<String>)> {
    let text = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            ))
        })
        .collect()
}

pub fn resolve(spec: &str, rootfs: &Path) -> Result<ResolvedUser, UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(rootfs);
    let user = if user.is_empty() { "0" } else { user };
    let entry = match user.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => users.iter().find(|e| e.name == user),
    };
    let (uid, mut gid, home, name) = match (entry, user.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        // A numeric uid without a passwd entry is fine (Docker allows it).
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => return Err(UserError::NoUser(user.to_string())),
    };
    let all_groups = groups(rootfs);
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => all_groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, id, _)| *id)
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        };
    }
    let additional_gids = match (&name, group) {
        (Some(n), None) => all_groups
            .iter()
            .filter(|(_, id, members)| *id != gid && members.contains(n))
            .map(|(_, id, _)| *id)
            .collect(),
        _ => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berth-user-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.join("etc/group"), "root:x:0:\nweb:x:33:\nadm:x:4:web\n").unwrap();
        d
    }

    #[test]
    fn names_ids_and_groups_resolve() {
        let r = rootfs();
        let u = resolve("web", &r).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone(), u.home.as_str()),
            (33, 33, vec![4], "/var/www")
        );
        assert_eq!(resolve("", &r).unwrap().uid, 0);
        assert_eq!(resolve("1234", &r).unwrap().uid, 1234);
        let u = resolve("web:adm", &r).unwrap();
        assert_eq!((u.uid, u.gid), (33, 4));
        assert_eq!(resolve("5:6", &r).unwrap().gid, 6);
        assert!(resolve("nobody-here", &r)
            .unwrap_err()
            .to_string()
            .contains("unable to find user nobody-here"));
        assert!(resolve("web:nogroup", &r).is_err());
    }
}
