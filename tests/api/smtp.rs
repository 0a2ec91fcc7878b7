//! A real SMTP server on loopback for the email tests (mailin-embedded), behind a small
//! TCP relay that can be stopped and started again on the same port, so a test can take
//! the "mail server" down and bring it back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parsable message")
    }
}

#[derive(Clone, Default)]
struct Collector {
    inbox: Arc<Mutex<Vec<Received>>>,
    current: Option<Received>,
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            from: from.to_string(),
            to: to.to_vec(),
            data: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(message) = &mut self.current {
            message.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(message) = self.current.take() {
            self.inbox.lock().unwrap().push(message);
        }
        response::OK
    }
}

pub struct TestSmtp {
    pub port: u16,
    backend: SocketAddr,
    inbox: Arc<Mutex<Vec<Received>>>,
    relay: Option<JoinHandle<()>>,
}

impl TestSmtp {
    /// Starts the server and its relay; the relay's port is the one to configure.
    pub async fn start() -> TestSmtp {
        let collector = Collector::default();
        let inbox = collector.inbox.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let backend = listener.local_addr().unwrap();
        let mut server = Server::new(collector);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_num_threads(8)
            .with_tcp_listener(listener);
        // mailin-embedded serves forever on its own threads; the test process ends it.
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut smtp = TestSmtp {
            port,
            backend,
            inbox,
            relay: None,
        };
        smtp.relay = Some(relay(listener, backend));
        smtp
    }

    /// Takes the server down: new connections are refused, open ones are cut.
    pub fn stop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }

    /// Brings it back on the same port.
    pub async fn restart(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebinding the SMTP port: {e}"),
            }
        };
        self.relay = Some(relay(listener, self.backend));
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived (or 20 seconds pass), and returns all.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let started = std::time::Instant::now();
        loop {
            let received = self.received();
            if received.len() >= count || started.elapsed().as_secs() >= 20 {
                return received;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts on `listener` and pipes every connection to the real server; aborting the
/// task closes the listener and every open connection with it.
fn relay(listener: TcpListener, backend: SocketAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            connections.spawn(async move {
                if let Ok(mut server) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}
