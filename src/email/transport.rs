//! Where messages go: `.eml` files in a folder (the default, so a fresh checkout shows
//! real emails without a mail server), or an SMTP server.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{EmailSettings, EmailTransport, SmtpTls};

#[derive(Clone)]
pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Mailer> {
        Ok(match settings.transport {
            EmailTransport::File => {
                std::fs::create_dir_all(&settings.file_dir)
                    .map_err(|e| anyhow::anyhow!("email.file_dir {}: {e}", settings.file_dir))?;
                Mailer::File(AsyncFileTransport::new(&settings.file_dir))
            }
            EmailTransport::Smtp => {
                let smtp = &settings.smtp;
                let tls = match smtp.tls {
                    SmtpTls::None => Tls::None,
                    SmtpTls::Starttls => Tls::Required(TlsParameters::new(smtp.host.clone())?),
                    SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(smtp.host.clone())?),
                };
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                        .port(smtp.port)
                        .tls(tls)
                        .timeout(Some(Duration::from_secs(smtp.timeout_seconds)));
                if !smtp.username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        smtp.username.clone(),
                        smtp.password.clone(),
                    ));
                }
                Mailer::Smtp(builder.build())
            }
        })
    }

    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Mailer::File(transport) => transport.send(message).await.map(|_| ())?,
            Mailer::Smtp(transport) => transport.send(message).await.map(|_| ())?,
        }
        Ok(())
    }
}
