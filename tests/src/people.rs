//! People and service accounts in a real deployment: invites made with the first admin's
//! `cordonctl`, redeemed by `cordonctl login` into a credential directory of their own, and
//! calls made with that credential, through cordonctl or as raw gRPC requests (to reach every
//! admin RPC, whatever its message).

use crate::binaries::{bin, run};
use crate::deploy::Deployment;
use cordon_proto::admin::AdminConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, Identity};

/// One person or service account's credential on "their own machine" (a directory).
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
}

impl Member {
    pub fn credential(&self) -> PathBuf {
        self.dir.join("credential.toml")
    }
}

impl Deployment {
    /// Invites `name` (`--service` in `extra` for a service account); the JSON answer.
    pub fn invite(&self, name: &str, role: &str, extra: &[&str]) -> Value {
        let mut args = vec!["users", "invite", name, "--role", role];
        args.extend_from_slice(extra);
        self.ctl_json(&args)
    }

    /// Runs `cordonctl login` with the code in a file, into a new directory.
    pub fn try_login(&self, code: &str, dir: &Path) -> Output {
        let code_file = dir.with_extension("code");
        std::fs::write(&code_file, code).unwrap();
        let fingerprint = self.ca_fingerprint();
        let mut cmd = self.in_ctl_ns(bin("cordonctl"));
        cmd.env_remove("CORDON_ADMIN")
            .args(["login", "--controller", &self.url, "--ca-fingerprint"])
            .arg(&fingerprint)
            .arg("--invite-file")
            .arg(&code_file)
            .arg("--dir")
            .arg(dir);
        run(cmd, Duration::from_secs(60))
    }

    /// Invites and logs in `name` with `role`.
    pub fn member(&self, name: &str, role: &str, extra: &[&str]) -> Member {
        let invite = self.invite(name, role, extra);
        let dir = self.dir.path().join(format!("home-{name}"));
        let out = self.try_login(invite["code"].as_str().unwrap(), &dir);
        assert!(
            out.status.success(),
            "login {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Member {
            name: name.into(),
            dir,
        }
    }

    /// Runs cordonctl with `credential` instead of the first admin's.
    pub fn try_ctl_as(&self, credential: &Path, args: &[&str]) -> Output {
        let mut cmd = self.in_ctl_ns(bin("cordonctl"));
        cmd.env("CORDON_ADMIN", credential).args(args);
        run(cmd, Duration::from_secs(60))
    }

    pub fn ca_fingerprint(&self) -> String {
        let cfg = AdminConfig::load(&self.data_dir.join("admin.toml")).unwrap();
        cfg.ca_fingerprint
    }
}

/// A gRPC channel made with a credential file, as cordonctl makes it.
pub async fn channel(credential: &Path) -> Result<Channel, String> {
    let cfg = AdminConfig::load(credential).map_err(|e| e.to_string())?;
    let read = |p: &Path| std::fs::read(p).unwrap();
    cordon_proto::channel::tls_channel(
        &cfg.controller,
        Certificate::from_pem(read(&cfg.ca_cert)),
        Some(Identity::from_pem(read(&cfg.cert), read(&cfg.key))),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Calls `/cordon.v1.AdminService/RPC` with an empty request; the status it ends with
/// (`Ok` when it answered). A server-streaming RPC counts as answered once its stream opens.
pub async fn raw_call(channel: Channel, rpc: &str, streaming: bool) -> tonic::Status {
    let path: tonic::codegen::http::uri::PathAndQuery =
        format!("/cordon.v1.AdminService/{rpc}").parse().unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        return tonic::Status::unavailable(e.to_string());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let req = tonic::Request::new(());
    let result = if streaming {
        grpc.server_streaming(req, path, codec).await.map(|_| ())
    } else {
        grpc.unary(req, path, codec).await.map(|_| ())
    };
    match result {
        Ok(()) => tonic::Status::ok(""),
        Err(s) => s,
    }
}
