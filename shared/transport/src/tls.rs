//! TLS client configuration: the system's trust store plus any extra CA certificates the
//! operator names (a provider with a private CA, or a test server's self-signed certificate).

use std::{path::PathBuf, sync::Arc};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::TransportError;

#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM files whose certificates are trusted in addition to the system's roots.
    pub extra_ca_files: Vec<PathBuf>,
}

impl TlsSettings {
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A single unparsable system certificate must not take TLS down for everyone.
            let _ = roots.add(cert);
        }
        for file in &self.extra_ca_files {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TransportError::Tls(format!("cannot read CA file {}: {e}", file.display())))?;
            if certs.is_empty() {
                return Err(TransportError::Tls(format!("CA file {} holds no certificate", file.display())));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| TransportError::Tls(format!("bad certificate in {}: {e}", file.display())))?;
            }
        }
        let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
