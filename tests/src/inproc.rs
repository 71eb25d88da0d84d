//! A controller running inside the test process on a loopback port, with helpers to enrol
//! agents through the real enrolment path and to open raw agent and admin connections.

use cordon_agent::state::StateDir;
use cordon_agent::uplink::enroll::{EnrollOptions, enroll};
use cordon_controller::api::serve;
use cordon_controller::core::Controller;
use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_proto::agent_service_client::AgentServiceClient;
use cordon_proto::channel::tls_channel;
use cordon_proto::limits::{AGENT_MAX_MESSAGE, CONTROLLER_MAX_MESSAGE};
use cordon_proto::{
    AgentMessage, AgentNotice, ControllerMessage, Event, Hello, HostFacts, TelemetryBatch,
    agent_message, controller_message, event,
};
use cordon_proto::{CreateTokenRequest, CreateTokenResponse};
use cordonctl::client::{AdminConfig, connect};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, Identity};

pub struct TestController {
    pub dir: TempDir,
    pub url: String,
    pub ctl: Arc<Controller>,
    pub admin: AdminConfig,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestController {
    /// Initialises a controller in a temp dir and serves it on 127.0.0.1 (a free port).
    /// `tweak` may edit controller.toml before it starts.
    pub async fn start_with(tweak: impl FnOnce(&mut String)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let done = cordon_controller::init::init(dir.path(), addr, vec!["127.0.0.1".into()])
            .expect("init");
        let cfg_path = dir.path().join(cordon_controller::config::CONFIG_FILE);
        let mut text = std::fs::read_to_string(&cfg_path).expect("config");
        tweak(&mut text);
        std::fs::write(&cfg_path, text).expect("config");
        let (ctl, stop, task) = Self::serve_on(dir.path(), listener).await;
        let admin = AdminConfig::load(&done.admin_config).expect("admin config");
        Self {
            dir,
            url: done.url,
            ctl,
            admin,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn serve_on(
        dir: &std::path::Path,
        listener: TcpListener,
    ) -> (
        Arc<Controller>,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let ctl = Controller::open(dir).await.expect("open controller");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn({
            let ctl = ctl.clone();
            async move {
                serve(ctl, listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            }
        });
        (ctl, stop, task)
    }

    /// Starts serving again from the same data and address (after [`Self::stop`]).
    pub async fn restart(&mut self) {
        let addr = self.ctl.config.listen;
        let listener = TcpListener::bind(addr).await.expect("rebind");
        let (ctl, stop, task) = Self::serve_on(self.dir.path(), listener).await;
        self.ctl = ctl;
        self.stop = Some(stop);
        self.task = Some(task);
    }

    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the settings in the TOML `extra` merged into controller.toml (a table in
    /// it replaces the table of that name).
    pub async fn start_configured(extra: &str) -> Self {
        Self::start_with(|text| *text = crate::deploy::merged_toml(text, extra)).await
    }

    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        connect(&self.admin).await.expect("admin connect")
    }

    pub async fn token(&self, uses: u32, ttl_secs: u64) -> CreateTokenResponse {
        self.admin()
            .await
            .create_token(CreateTokenRequest {
                ttl_secs,
                uses,
                labels: HashMap::new(),
            })
            .await
            .expect("token")
            .into_inner()
    }

    /// Enrols a new agent through the real enrolment path; returns its state dir.
    pub async fn enroll(&self) -> TestAgent {
        let t = self.token(1, 600).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path().join("state"));
        let opts = EnrollOptions {
            controllers: vec![t.controller_url],
            token: t.token,
            ca_fingerprint: t.ca_fingerprint,
            labels: HashMap::new(),
            force: false,
        };
        let identity = enroll(&state, opts).await.expect("enroll");
        TestAgent {
            _dir: dir,
            state,
            id: identity.agent_id,
        }
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).expect("ca")
    }

    /// Stops serving (closing every agent stream) and waits for the server to finish.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

pub struct TestAgent {
    _dir: TempDir,
    pub state: StateDir,
    pub id: String,
}

/// The real agent runtime running in-process; stopped on drop.
pub struct Running {
    pub uplink: Arc<cordon_agent::uplink::Uplink>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestAgent {
    /// Runs the real agent runtime (stream, commands, renewal) for this agent, with the file
    /// sensor watching nothing of the machine's own and no network sensor, so event counts
    /// are exact.
    pub fn run(&self) -> Running {
        self.run_watching(&[])
    }

    /// As [`Self::run`], with the file sensor watching `watch` (with inotify: fanotify
    /// would see the whole machine, and never this process's own writes, the agent's).
    pub fn run_watching(&self, watch: &[&std::path::Path]) -> Running {
        let files = cordon_agent::sensors::file::FileSensorConfig {
            mode: cordon_agent::sensors::file::Mode::Inotify,
            watch: watch.iter().map(|p| p.display().to_string()).collect(),
            recursive: Vec::new(),
            ..Default::default()
        };
        let network = cordon_agent::sensors::network::NetworkSensorConfig {
            mode: cordon_agent::sensors::network::Mode::Off,
            ..Default::default()
        };
        let config = cordon_agent::config::AgentConfig {
            heartbeat_interval_secs: 1,
            files,
            network,
            ..Default::default()
        };
        let up =
            cordon_agent::uplink::Uplink::new(self.state.clone(), config, None).expect("uplink");
        Running {
            uplink: up.clone(),
            task: tokio::spawn(cordon_agent::uplink::run(up)),
        }
    }

    pub fn cert_and_key(&self) -> (String, String) {
        let read = |p: PathBuf| std::fs::read_to_string(p).expect("read");
        (read(self.state.cert()), read(self.state.key()))
    }

    /// An agent-service client that presents this agent's certificate.
    pub async fn client(&self, url: &str) -> AgentServiceClient<Channel> {
        let ca = std::fs::read_to_string(self.state.ca()).expect("ca");
        let (cert, key) = self.cert_and_key();
        let ch = tls_channel(
            url,
            Certificate::from_pem(ca),
            Some(Identity::from_pem(cert, key)),
        )
        .await
        .expect("agent channel");
        AgentServiceClient::new(ch)
            .max_decoding_message_size(CONTROLLER_MAX_MESSAGE)
            .max_encoding_message_size(AGENT_MAX_MESSAGE * 4)
    }
}

/// What a test sends on an agent's stream.
pub type Outbox = mpsc::Sender<AgentMessage>;

/// An agent's first message, claiming `agent_id`.
pub fn hello(agent_id: &str) -> AgentMessage {
    AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            agent_id: agent_id.into(),
            host: Some(HostFacts {
                hostname: "test".into(),
                ..Default::default()
            }),
            heartbeat_interval_secs: 1,
        })),
    }
}

/// Opens a stream, says hello as `claimed`, and returns the outbox and the inbound stream.
pub async fn session(
    client: &mut AgentServiceClient<Channel>,
    claimed: &str,
) -> Result<(Outbox, Streaming<ControllerMessage>), tonic::Status> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(hello(claimed)).await.expect("queue hello");
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    match inbound.message().await? {
        Some(ControllerMessage {
            msg: Some(controller_message::Msg::Welcome(_)),
        }) => Ok((tx, inbound)),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// A session for an enrolled test agent, with its own certificate.
pub async fn connected(
    ctl: &TestController,
    agent: &TestAgent,
) -> (Outbox, Streaming<ControllerMessage>) {
    let mut client = agent.client(&ctl.url).await;
    session(&mut client, &agent.id).await.expect("session")
}

/// Enrols through the real enrolment path with the given token; the agent id or the error.
pub async fn enrol_with(
    token: String,
    ca_fingerprint: String,
    url: String,
) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("s"));
    let opts = EnrollOptions {
        controllers: vec![url],
        token,
        ca_fingerprint,
        labels: HashMap::new(),
        force: false,
    };
    enroll(&state, opts)
        .await
        .map(|identity| identity.agent_id)
        .map_err(|e| e.to_string())
}

/// A telemetry batch of one notice per sequence number.
pub fn notice_batch(seqs: std::ops::RangeInclusive<u64>) -> AgentMessage {
    let events = seqs
        .map(|seq| Event {
            seq,
            time_ms: 1,
            body: Some(event::Body::Notice(AgentNotice {
                kind: "test".into(),
                count: seq,
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    AgentMessage {
        msg: Some(agent_message::Msg::Telemetry(TelemetryBatch { events })),
    }
}

/// The sequence number of the next acknowledgement on the stream (other messages skipped).
pub async fn next_ack(inbound: &mut Streaming<ControllerMessage>) -> u64 {
    ack_or_end(inbound)
        .await
        .expect("stream failed before an ack")
}

/// The next acknowledgement's sequence number, or the status the stream ended with.
pub async fn ack_or_end(inbound: &mut Streaming<ControllerMessage>) -> Result<u64, tonic::Status> {
    loop {
        match inbound.message().await? {
            Some(ControllerMessage {
                msg: Some(controller_message::Msg::Ack(a)),
            }) => return Ok(a.through_seq),
            Some(_) => continue,
            None => panic!("stream ended before an ack"),
        }
    }
}

/// How the controller ends the stream (messages before the end are skipped); panics if it is
/// still open after five seconds.
pub async fn stream_end(
    inbound: &mut Streaming<ControllerMessage>,
) -> Result<Option<ControllerMessage>, tonic::Status> {
    let end = async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), end)
        .await
        .expect("the stream was not ended within 5 s")
}
