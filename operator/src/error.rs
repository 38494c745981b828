//! Errors of one reconcile, with the context a person needs to act.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error while {action}: {source}")]
    Kube { action: String, source: kube::Error },
    #[error("the DatabaseApi has no {0} (it must be a namespaced object read from the API)")]
    MissingMetadata(&'static str),
    #[error("could not serialize the runtime configuration: {0}")]
    Config(#[from] serde_yaml::Error),
    #[error(transparent)]
    Cache(#[from] crate::resources::cache::InvalidQuantity),
    #[error("could not generate an API key: {0}")]
    Random(String),
}

impl Error {
    pub fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
