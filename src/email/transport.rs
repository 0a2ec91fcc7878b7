//! Where messages go: `.eml` files in a folder (the default, so a fresh checkout shows
//! real emails without a mail server), or an SMTP server.
//!
//! For SMTP without TLS or with STARTTLS, the worker keeps one connection of its own,
//! opened with TCP_NODELAY: lettre's pooled transport writes a message's body and its
//! closing dot separately, and with Nagle's algorithm on, that final write waits for the
//! server's delayed ACK, about 40 ms a message. Implicit TLS (port 465) uses lettre's own
//! transport, which needs the TLS session set up before the first byte.

use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Mutex;

use crate::config::{EmailSettings, EmailTransport, SmtpSettings, SmtpTls};

pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(Box<SmtpConnection>),
    SmtpImplicitTls(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Mailer> {
        Ok(match (settings.transport, settings.smtp.tls) {
            (EmailTransport::File, _) => {
                std::fs::create_dir_all(&settings.file_dir)
                    .map_err(|e| anyhow::anyhow!("email.file_dir {}: {e}", settings.file_dir))?;
                Mailer::File(AsyncFileTransport::new(&settings.file_dir))
            }
            (EmailTransport::Smtp, SmtpTls::Tls) => {
                let smtp = &settings.smtp;
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                        .port(smtp.port)
                        .tls(Tls::Wrapper(TlsParameters::new(smtp.host.clone())?))
                        .timeout(Some(Duration::from_secs(smtp.timeout_seconds)));
                if let Some(credentials) = credentials(smtp) {
                    builder = builder.credentials(credentials);
                }
                Mailer::SmtpImplicitTls(builder.build())
            }
            (EmailTransport::Smtp, _) => Mailer::Smtp(Box::new(SmtpConnection {
                settings: settings.smtp.clone(),
                open: Mutex::new(None),
            })),
        })
    }

    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Mailer::File(transport) => transport.send(message).await.map(|_| ())?,
            Mailer::Smtp(connection) => connection.send(&message).await?,
            Mailer::SmtpImplicitTls(transport) => transport.send(message).await.map(|_| ())?,
        }
        Ok(())
    }
}

fn credentials(smtp: &SmtpSettings) -> Option<Credentials> {
    (!smtp.username.is_empty())
        .then(|| Credentials::new(smtp.username.clone(), smtp.password.clone()))
}

/// One SMTP session, opened when first needed and again after it breaks.
pub struct SmtpConnection {
    settings: SmtpSettings,
    open: Mutex<Option<AsyncSmtpConnection>>,
}

impl SmtpConnection {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_seconds)
    }

    async fn connect(&self) -> anyhow::Result<AsyncSmtpConnection> {
        let smtp = &self.settings;
        let address = (smtp.host.as_str(), smtp.port);
        let stream = tokio::time::timeout(self.timeout(), tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| {
                anyhow::anyhow!("connecting to {}:{} timed out", smtp.host, smtp.port)
            })??;
        stream.set_nodelay(true)?;
        let hello = ClientId::default();
        let mut connection = tokio::time::timeout(
            self.timeout(),
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the SMTP greeting timed out"))??;
        if smtp.tls == SmtpTls::Starttls {
            connection
                .starttls(TlsParameters::new(smtp.host.clone())?, &hello)
                .await?;
        }
        if let Some(credentials) = credentials(smtp) {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await?;
        }
        Ok(connection)
    }

    /// Sends on the open session; a session the server closed while idle is replaced
    /// once, any other failure is the message's.
    async fn send(&self, message: &Message) -> anyhow::Result<()> {
        let envelope = message.envelope();
        let bytes = message.formatted();
        let mut open = self.open.lock().await;
        for fresh in [false, true] {
            let reused = open.is_some();
            if open.is_none() {
                *open = Some(self.connect().await?);
            }
            let Some(connection) = open.as_mut() else {
                unreachable!("a connection was just opened");
            };
            let result =
                tokio::time::timeout(self.timeout(), connection.send(envelope, &bytes)).await;
            match result {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(error)) => {
                    let broken = connection.has_broken() || !error.is_permanent();
                    if broken {
                        *open = None;
                    }
                    if !(reused && !fresh && broken) {
                        return Err(error.into());
                    }
                }
                Err(_) => {
                    *open = None;
                    return Err(anyhow::anyhow!("sending timed out"));
                }
            }
        }
        Err(anyhow::anyhow!("the SMTP server closed the connection"))
    }
}
