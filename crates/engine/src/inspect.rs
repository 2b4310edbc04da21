//! `berth ps` rows and `berth inspect` documents, in Docker's shapes so scripts written
//! against `docker ps --format json` and `docker inspect` keep working.

use serde_json::{json, Value};

use crate::state::{ContainerConfig, ContainerState, Status};
use crate::{Engine, EngineError};

/// One container as `ps` shows it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub config: ContainerConfig,
    pub state: ContainerState,
}

impl Summary {
    /// `Up 5 minutes`, `Exited (0) 2 minutes ago`, `Created`.
    pub fn status_text(&self, since: impl Fn(&str) -> String) -> String {
        match self.state.status {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}", since(&self.state.started_at)),
            Status::Paused => format!("Up {} (Paused)", since(&self.state.started_at)),
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                self.state.exit_code.unwrap_or(0),
                since(&self.state.finished_at)
            ),
            Status::Exited => format!(
                "Exited ({}) {} ago",
                self.state.exit_code.unwrap_or(0),
                since(&self.state.finished_at)
            ),
            Status::Dead => "Dead".into(),
        }
    }

    /// `0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp`
    pub fn ports_text(&self) -> String {
        self.state
            .published
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}/{}",
                    p.host_ip.as_deref().unwrap_or("0.0.0.0"),
                    p.host_port,
                    p.container_port,
                    p.proto
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Engine {
    /// Every container (or only the running ones), newest first.
    pub fn list(&self, all: bool) -> Result<Vec<Summary>, EngineError> {
        let mut out = Vec::new();
        for id in self.containers.ids()? {
            let Ok((config, state)) = self.load(&id) else {
                continue;
            };
            if all
                || matches!(
                    state.status,
                    Status::Running | Status::Paused | Status::Restarting
                )
            {
                out.push(Summary { config, state });
            }
        }
        out.sort_by(|a, b| b.config.created.cmp(&a.config.created));
        Ok(out)
    }

    /// Docker's container JSON.
    pub fn inspect(&self, key: &str) -> Result<Value, EngineError> {
        let id = self.containers.resolve(key)?;
        let (c, s) = self.load(&id)?;
        let dir = self.containers.dir(&id);
        let mut ports = serde_json::Map::new();
        for p in &s.published {
            ports.insert(
                format!("{}/{}", p.container_port, p.proto),
                json!([{ "HostIp": p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()), "HostPort": p.host_port.to_string() }]),
            );
        }
        let networks: serde_json::Map<String, Value> = s
            .networks
            .iter()
            .map(|(name, ip)| (name.clone(), json!({ "IPAddress": ip })))
            .collect();
        let first_ip = s.networks.values().next().cloned().unwrap_or_default();
        let mounts: Vec<Value> = c
            .mounts
            .iter()
            .map(|m| {
                let source = match m.kind {
                    crate::state::MountKind::Volume => self.volumes.data_path(&m.source).display().to_string(),
                    _ => m.source.clone(),
                };
                json!({
                    "Type": m.kind,
                    "Name": if m.kind == crate::state::MountKind::Volume { m.source.clone() } else { String::new() },
                    "Source": source,
                    "Destination": m.target,
                    "RW": !m.readonly,
                })
            })
            .collect();
        Ok(json!({
            "Id": c.id,
            "Created": c.created,
            "Path": c.argv().first().cloned().unwrap_or_default(),
            "Args": c.argv().iter().skip(1).cloned().collect::<Vec<_>>(),
            "State": {
                "Status": s.status.as_str(),
                "Running": s.status == Status::Running || s.status == Status::Paused,
                "Paused": s.status == Status::Paused,
                "Restarting": s.status == Status::Restarting,
                "OOMKilled": s.oom_killed,
                "Dead": s.status == Status::Dead,
                "Pid": if s.status == Status::Running { s.pid.unwrap_or(0) } else { 0 },
                "ExitCode": s.exit_code.unwrap_or(0),
                "Error": s.error,
                "StartedAt": if s.started_at.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { s.started_at.clone() },
                "FinishedAt": if s.finished_at.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { s.finished_at.clone() },
            },
            "Image": c.image_id,
            "Name": format!("/{}", c.name),
            "RestartCount": s.restart_count,
            "LogPath": dir.join("container.log").display().to_string(),
            "HostConfig": {
                "NetworkMode": c.network,
                "RestartPolicy": restart_json(&c.restart),
                "AutoRemove": c.auto_remove,
                "Privileged": c.privileged,
                "ReadonlyRootfs": c.read_only,
                "CapAdd": c.cap_add,
                "CapDrop": c.cap_drop,
                "Memory": c.resources.memory.unwrap_or(0),
                "NanoCpus": c.resources.cpus.map_or(0, |v| (v * 1e9) as i64),
                "PidsLimit": c.resources.pids_limit,
                "Init": c.init,
            },
            "Mounts": mounts,
            "Config": {
                "Hostname": c.hostname,
                "User": c.user,
                "Tty": c.tty,
                "OpenStdin": c.open_stdin,
                "Env": c.env,
                "Cmd": c.cmd,
                "Entrypoint": if c.entrypoint.is_empty() { Value::Null } else { json!(c.entrypoint) },
                "Image": c.image,
                "WorkingDir": c.working_dir,
                "Labels": c.labels,
                "StopSignal": c.stop_signal,
            },
            "NetworkSettings": {
                "IPAddress": first_ip,
                "Ports": ports,
                "Networks": networks,
            },
        }))
    }
}

fn restart_json(p: &crate::state::RestartPolicy) -> Value {
    use crate::state::RestartPolicy::*;
    match p {
        No => json!({"Name": "no", "MaximumRetryCount": 0}),
        Always => json!({"Name": "always", "MaximumRetryCount": 0}),
        UnlessStopped => json!({"Name": "unless-stopped", "MaximumRetryCount": 0}),
        OnFailure(n) => json!({"Name": "on-failure", "MaximumRetryCount": n}),
    }
}
