//! One reconcile of one `DatabaseApi`: check what it references, keep its
//! API keys, apply every desired child with server-side apply, remove
//! children no longer desired, and write status when it changed.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbapi_crds::crd::{ApiKeySpec, ApiKeyStatus, DatabaseApi, SecretKeyRef};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::keys::{ExistingKey, KeyAction, decide, expired, generate_key};
use crate::metrics::Metrics;
use crate::resources::config::{KeyMaterial, config_checksum, config_map, config_secret, runtime_config};
use crate::resources::keys::{key_secret, rotation_token, sha256_hex};
use crate::resources::{
    FIELD_MANAGER, OperatorDefaults, autoscaling, cache, deployment, names, network, pool_per_replica, service,
    service_url,
};
use crate::status::{self, CacheState, Observed};

/// How often a healthy DatabaseApi is looked at again without a change.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a DatabaseApi with a missing Secret is retried (a Secret watch
/// usually triggers sooner).
const MISSING_SECRET_RETRY: Duration = Duration::from_secs(60);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub defaults: OperatorDefaults,
    /// One recorder for the process, so repeated events are aggregated.
    recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// The current time; fixed in tests.
    pub clock: fn() -> Timestamp,
    /// Consecutive failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, defaults: OperatorDefaults, reporter: Reporter, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(client.clone(), reporter);
        Context { client, defaults, recorder, metrics, clock: Timestamp::now, failures: Mutex::default() }
    }

    /// The same context with a fixed clock, for tests.
    pub fn with_clock(mut self, clock: fn() -> Timestamp) -> Self {
        self.clock = clock;
        self
    }

    fn failure_key(api: &DatabaseApi) -> String {
        format!("{}/{}", api.namespace().unwrap_or_default(), api.name_any())
    }

    /// Records a failure and returns how many in a row there were.
    fn failed(&self, api: &DatabaseApi) -> u32 {
        let mut f = self.failures.lock().expect("the failure map is never poisoned");
        let n = f.entry(Self::failure_key(api)).or_insert(0);
        *n += 1;
        *n
    }

    fn succeeded(&self, api: &DatabaseApi) {
        self.failures.lock().expect("the failure map is never poisoned").remove(&Self::failure_key(api));
    }
}

/// The controller's reconcile: runs one pass, records metrics, and on
/// failure reports it as an event and a Degraded condition.
pub async fn reconcile(api: Arc<DatabaseApi>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = reconcile_once(&api, &ctx).await;
    ctx.metrics.observe(result.is_ok(), started.elapsed());
    match &result {
        Ok(_) => ctx.succeeded(&api),
        Err(e) => {
            tracing::warn!(name = %api.name_any(), namespace = ?api.namespace(), error = %e, "reconcile failed");
            publish(&ctx, &api, EventType::Warning, "ReconcileFailed", "Reconcile", e.to_string()).await;
            let observed = Observed { error: Some(e.to_string()), ..Observed::default() };
            if let Err(status_error) = write_status(&api, &ctx, observed).await {
                tracing::warn!(error = %status_error, "could not record the failure in status");
            }
        }
    }
    result
}

/// Exponential backoff on failures: 5 s, 10 s, 20 s … at most 5 minutes.
pub fn error_policy(api: Arc<DatabaseApi>, _error: &Error, ctx: Arc<Context>) -> Action {
    let n = ctx.failed(&api).min(6);
    Action::requeue(Duration::from_secs((5u64 << (n - 1)).min(300)))
}

async fn reconcile_once(api: &DatabaseApi, ctx: &Context) -> Result<Action> {
    let ns = api.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    if api.uid().is_none() {
        return Err(Error::MissingMetadata("uid"));
    }
    let now = (ctx.clock)();

    if let Some(missing) = missing_secret(api, &ctx.client, &ns).await? {
        publish(ctx, api, EventType::Warning, "SecretNotFound", "CheckSecrets", missing.clone()).await;
        write_status(api, ctx, Observed { missing_secret: Some(missing), ..Observed::default() }).await?;
        return Ok(Action::requeue(MISSING_SECRET_RETRY));
    }

    let (materials, key_statuses, next_expiry) = ensure_keys(api, ctx, &ns, now).await?;
    let (public, secret) = runtime_config(api, &materials);
    let checksum = config_checksum(&public);
    apply(&ctx.client, &ns, &config_map(api, &public)?).await?;
    apply(&ctx.client, &ns, &config_secret(api, &secret)?).await?;

    // Before the runtime pods, which read the Redis URL from it.
    if cache::runs_redis(api) {
        ensure_cache_secret(api, ctx, &ns).await?;
    }
    let runtime = apply(&ctx.client, &ns, &deployment::deployment(api, &ctx.defaults, &checksum)).await?;
    apply(&ctx.client, &ns, &service::service(api)).await?;
    match autoscaling::hpa(api) {
        Some(hpa) => drop(apply(&ctx.client, &ns, &hpa).await?),
        None => delete_owned::<HorizontalPodAutoscaler>(api, &ctx.client, &ns, &names::api(api)).await?,
    }
    match autoscaling::pdb(api) {
        Some(pdb) => drop(apply(&ctx.client, &ns, &pdb).await?),
        None => delete_owned::<PodDisruptionBudget>(api, &ctx.client, &ns, &names::api(api)).await?,
    }
    let cache_state = match (cache::cache_deployment(api, &ctx.defaults)?, cache::cache_service(api)) {
        (Some(d), Some(s)) => {
            let d = apply(&ctx.client, &ns, &d).await?;
            apply(&ctx.client, &ns, &s).await?;
            let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0) > 0;
            CacheState::Managed { available }
        }
        _ => {
            delete_owned::<Deployment>(api, &ctx.client, &ns, &names::cache(api)).await?;
            delete_owned::<Service>(api, &ctx.client, &ns, &names::cache(api)).await?;
            delete_owned::<Secret>(api, &ctx.client, &ns, &names::cache(api)).await?;
            if api.spec.cache.is_some() { CacheState::External } else { CacheState::NotConfigured }
        }
    };
    for (policy, name) in [(network::api_policy(api), names::api(api)), (network::cache_policy(api), names::cache(api))]
    {
        match policy {
            Some(policy) => drop(apply(&ctx.client, &ns, &policy).await?),
            None => delete_owned::<NetworkPolicy>(api, &ctx.client, &ns, &name).await?,
        }
    }
    prune_key_secrets(api, ctx, &ns).await?;

    let observed = Observed {
        ready_replicas: Some(runtime.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)),
        rolling_out: rolling_out(&runtime),
        cache: cache_state,
        url: service_url(api),
        pool_per_replica: Some(pool_per_replica(api)),
        api_keys: key_statuses,
        ..Observed::default()
    };
    write_status(api, ctx, observed).await?;
    let requeue = match next_expiry {
        Some(at) => at.duration_since(now).unsigned_abs().clamp(Duration::from_secs(1), RESYNC),
        None => RESYNC,
    };
    Ok(Action::requeue(requeue))
}

/// Every Secret key the spec references, in the order a reader would check
/// them.
fn referenced_secrets(api: &DatabaseApi) -> Vec<&SecretKeyRef> {
    let spec = &api.spec;
    let mut refs = vec![&spec.database.url_secret_ref];
    refs.extend(spec.database.read_replica_url_secret_ref.as_ref());
    refs.extend(spec.auth.as_ref().and_then(|a| a.jwt.as_ref()).and_then(|j| j.secret_ref.as_ref()));
    refs.extend(spec.cache.as_ref().and_then(|c| c.external.as_ref()).map(|e| &e.url_secret_ref));
    refs
}

/// Whether a Secret references by the spec (by name) is among these.
pub fn references_secret(api: &DatabaseApi, secret_name: &str) -> bool {
    referenced_secrets(api).iter().any(|r| r.name == secret_name)
}

/// A description of the first referenced Secret key that does not exist.
async fn missing_secret(api: &DatabaseApi, client: &Client, ns: &str) -> Result<Option<String>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for r in referenced_secrets(api) {
        let secret = secrets.get_opt(&r.name).await.map_err(Error::kube(format!("reading Secret {ns}/{}", r.name)))?;
        let has_key = secret.as_ref().is_some_and(|s| {
            s.data.as_ref().is_some_and(|d| d.contains_key(&r.key))
                || s.string_data.as_ref().is_some_and(|d| d.contains_key(&r.key))
        });
        match (secret, has_key) {
            (None, _) => {
                return Ok(Some(format!("Secret {ns}/{} does not exist; create it with key {:?}", r.name, r.key)));
            }
            (Some(_), false) => return Ok(Some(format!("Secret {ns}/{} has no key {:?}", r.name, r.key))),
            _ => {}
        }
    }
    Ok(None)
}

/// Makes sure every API key has its Secret, creating or rotating keys as
/// the spec asks, and returns their hashes, their status entries and the
/// earliest time a rotated-out key expires.
async fn ensure_keys(
    api: &DatabaseApi,
    ctx: &Context,
    ns: &str,
    now: Timestamp,
) -> Result<(Vec<KeyMaterial>, Vec<ApiKeyStatus>, Option<Timestamp>)> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut materials = Vec::new();
    let mut statuses = Vec::new();
    let mut next_expiry: Option<Timestamp> = None;
    for key in &api.spec.api_keys {
        let name = names::key_secret(api, &key.name);
        let found = secrets.get_opt(&name).await.map_err(Error::kube(format!("reading Secret {ns}/{name}")))?;
        let existing = found.as_ref().and_then(ExistingKey::from_secret);
        let token = rotation_token(api, key);
        let material = match decide(existing.as_ref(), &token, key.rotation_grace_period_seconds, now) {
            KeyAction::Keep => {
                let existing = existing.expect("Keep implies a key");
                KeyMaterial { name: key.name.clone(), sha256: existing.sha256(), previous: existing.previous }
            }
            KeyAction::Create => {
                let resource_version = found.as_ref().and_then(|s| s.metadata.resource_version.clone());
                create_key(api, ctx, &secrets, key, &token, resource_version).await?
            }
            KeyAction::Rotate { previous_not_after } => {
                let existing = existing.expect("Rotate implies a key");
                let plaintext = generate_key()?;
                let sha = sha256_hex(&plaintext);
                let previous = (existing.sha256(), previous_not_after);
                let mut secret =
                    key_secret(api, key, &plaintext, &sha, &token, Some((previous.0.as_str(), previous.1.as_str())));
                secret.metadata.resource_version = existing.resource_version.clone();
                secrets
                    .replace(&name, &post_params(), &secret)
                    .await
                    .map_err(Error::kube(format!("rotating the key in Secret {ns}/{name}")))?;
                let note = format!("Rotated API key {:?}; the previous key works until {}", key.name, previous.1);
                publish(ctx, api, EventType::Normal, "KeyRotated", "RotateKey", note).await;
                KeyMaterial { name: key.name.clone(), sha256: sha, previous: Some(previous) }
            }
            KeyAction::DropPrevious => {
                let existing = existing.expect("DropPrevious implies a key");
                let sha = existing.sha256();
                let mut secret = key_secret(api, key, &existing.plaintext, &sha, &token, None);
                secret.metadata.resource_version = existing.resource_version.clone();
                secrets
                    .replace(&name, &post_params(), &secret)
                    .await
                    .map_err(Error::kube(format!("retiring the previous key in Secret {ns}/{name}")))?;
                KeyMaterial { name: key.name.clone(), sha256: sha, previous: None }
            }
        };
        if let Some((_, not_after)) = &material.previous
            && !expired(not_after, now)
            && let Ok(at) = not_after.parse::<Timestamp>()
        {
            next_expiry = Some(next_expiry.map_or(at, |n| n.min(at)));
        }
        statuses.push(ApiKeyStatus { name: key.name.clone(), secret_name: name });
        materials.push(material);
    }
    Ok((materials, statuses, next_expiry))
}

/// Gives the operator-run Redis its Secret: a password generated once and
/// kept across reconciles and restarts (rotating it would cut off every
/// runtime pod until they restart), with the URL and Redis configuration
/// derived from it.
async fn ensure_cache_secret(api: &DatabaseApi, ctx: &Context, ns: &str) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let name = names::cache(api);
    let found = secrets.get_opt(&name).await.map_err(Error::kube(format!("reading Secret {ns}/{name}")))?;
    let password = match found.as_ref().and_then(cache::existing_password) {
        Some(password) => password,
        None => generate_key()?,
    };
    apply(&ctx.client, ns, &cache::cache_secret(api, &password)).await?;
    Ok(())
}

/// Creates a key's Secret. If it appeared meanwhile (another reconcile, a
/// restart), the key already there is kept: a key is never regenerated.
async fn create_key(
    api: &DatabaseApi,
    ctx: &Context,
    secrets: &Api<Secret>,
    key: &ApiKeySpec,
    token: &str,
    unusable_version: Option<String>,
) -> Result<KeyMaterial> {
    let plaintext = generate_key()?;
    let sha = sha256_hex(&plaintext);
    let mut secret = key_secret(api, key, &plaintext, &sha, token, None);
    let name = secret.name_any();
    let written = match unusable_version {
        // A Secret of ours without a usable key: give it one.
        Some(rv) => {
            secret.metadata.resource_version = Some(rv);
            secrets.replace(&name, &post_params(), &secret).await
        }
        None => secrets.create(&post_params(), &secret).await,
    };
    match written {
        Ok(_) => {
            let note = format!("Generated API key {:?} into Secret {name}", key.name);
            publish(ctx, api, EventType::Normal, "KeyCreated", "CreateKey", note).await;
            Ok(KeyMaterial { name: key.name.clone(), sha256: sha, previous: None })
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() || status.code == 409 => {
            let current = secrets.get(&name).await.map_err(Error::kube(format!("reading Secret {name}")))?;
            let existing = ExistingKey::from_secret(&current).ok_or_else(|| Error::Kube {
                action: format!("reading the key in Secret {name}"),
                source: kube::Error::Api(status),
            })?;
            Ok(KeyMaterial { name: key.name.clone(), sha256: existing.sha256(), previous: existing.previous })
        }
        Err(e) => Err(Error::Kube { action: format!("creating Secret {name}"), source: e }),
    }
}

/// Deletes the key Secrets of keys removed from the spec.
async fn prune_key_secrets(api: &DatabaseApi, ctx: &Context, ns: &str) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component=api-key,app.kubernetes.io/managed-by=dbapi-operator",
        api.name_any()
    );
    let desired: BTreeSet<String> = api.spec.api_keys.iter().map(|k| names::key_secret(api, &k.name)).collect();
    let list = secrets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube(format!("listing the key Secrets in {ns}")))?;
    for secret in list.items {
        let name = secret.name_any();
        if desired.contains(&name) || !owned_by(&secret, api) {
            continue;
        }
        match secrets.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => return Err(Error::Kube { action: format!("deleting Secret {ns}/{name}"), source: e }),
        }
        publish(
            ctx,
            api,
            EventType::Normal,
            "KeyDeleted",
            "DeleteKey",
            format!("Deleted Secret {name}: its key left the spec"),
        )
        .await;
    }
    Ok(())
}

fn owned_by<K: Resource>(obj: &K, api: &DatabaseApi) -> bool {
    let uid = api.uid();
    obj.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref() && o.controller == Some(true))
}

/// Server-side apply of a desired child under our field manager.
async fn apply<K>(client: &Client, ns: &str, obj: &K) -> Result<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj))
        .await
        .map_err(Error::kube(format!("applying {} {ns}/{name}", K::kind(&()))))
}

/// Deletes a child that is no longer desired, if it exists and is ours.
async fn delete_owned<K>(api: &DatabaseApi, client: &Client, ns: &str, name: &str) -> Result<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let children: Api<K> = Api::namespaced(client.clone(), ns);
    let action = || format!("removing {} {ns}/{name}", K::kind(&()));
    let Some(existing) = children.get_opt(name).await.map_err(Error::kube(action()))? else { return Ok(()) };
    if !owned_by(&existing, api) {
        return Ok(());
    }
    match children.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(Error::Kube { action: action(), source: e }),
    }
}

fn rolling_out(d: &Deployment) -> bool {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else { return true };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).or(status.replicas).unwrap_or(0);
    status.observed_generation.unwrap_or(0) < generation
        || status.updated_replicas.unwrap_or(0) < desired
        || status.unavailable_replicas.unwrap_or(0) > 0
}

/// Writes status if it differs from what the object already has.
async fn write_status(api: &DatabaseApi, ctx: &Context, observed: Observed) -> Result<bool> {
    let new = status::compute(api.status.as_ref(), api.metadata.generation, &observed, (ctx.clock)());
    if api.status.as_ref() == Some(&new) {
        return Ok(false);
    }
    let ns = api.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let apis: Api<DatabaseApi> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({ "status": new });
    apis.patch_status(&api.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::kube(format!("writing the status of DatabaseApi {ns}/{}", api.name_any())))?;
    Ok(true)
}

fn post_params() -> PostParams {
    PostParams { field_manager: Some(FIELD_MANAGER.to_string()), ..PostParams::default() }
}

/// Publishes an event about `api`; failures are logged, never fatal.
async fn publish(ctx: &Context, api: &DatabaseApi, type_: EventType, reason: &str, action: &str, note: String) {
    let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &api.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish an event");
    }
}
