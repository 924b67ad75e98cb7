//! The engine: commonware's simplex consensus over commonware's authenticated p2p, on
//! commonware's tokio runtime (a thread of its own beside the RPC server's runtime).
//!
//! Simplex orders 32-byte digests; here a digest is a block hash. The leader's
//! [`Validator::try_propose`] builds the block and the relay sends its bytes to every peer on
//! the `BLOCKS` channel; the other validators answer simplex's `verify` with
//! [`Validator::verify`] (re-execution in verify mode) once the bytes and the parent are there;
//! a finalization certificate from the reporter applies the block ([`Validator::finalize`]).
//! A validator missing a finalized block's bytes (restarted, or late) asks its peers for them
//! on the same channel. Transactions sent to any validator's RPC go to every other validator on
//! the `TRANSACTIONS` channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use commonware_actor::Feedback;
use commonware_codec::Decode as _;
use commonware_codec::Encode;
use commonware_consensus::simplex::scheme::bls12381_threshold::standard;
use commonware_consensus::simplex::types::{Activity, Context, Finalization};
use commonware_consensus::simplex::{self, elector::RoundRobin, Plan};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter, Viewable};
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{ed25519, ChaCha20Poly1305, Sha256};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::{Address, AddressableManager as _, Receiver as _, Recipients, Sender as _};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{tokio as runtime, Quota, Runner as _, Supervisor as _};
use commonware_stream::{cups, sake};
use commonware_utils::channel::oneshot;
use commonware_utils::ordered::{Map, Set};
use commonware_utils::{NZDuration, NZUsize, TryCollect, NZU16, NZU32};
use tokio::sync::mpsc;

use super::threshold::{Polynomial, Variant};
use super::validator::{Finalized, Validator, Verdict};
use crate::chain::Proposal;
use crate::node::Shared;
use crate::storage::StoredFinalization;

/// The signing scheme: BLS12-381 threshold signatures (one recovered signature per
/// certificate, against the group key), among validators known by their ed25519 p2p keys.
type Scheme = standard::Scheme<ed25519::PublicKey, Variant>;

/// Namespace of the validators' signatures and connections.
const NAMESPACE: &[u8] = b"verinfer";
/// Largest p2p message: a block with its transactions and witnesses.
const MAX_MESSAGE_BYTES: u32 = 16 << 20;
/// simplex's channels, then this module's.
const VOTES: u64 = 0;
const CERTIFICATES: u64 = 1;
const RESOLVER: u64 = 2;
const BLOCKS: u64 = 3;
const TRANSACTIONS: u64 = 4;
const MODELS: u64 = 5;
/// How often pending proposals, checks and finalizations are retried.
const RETRY: Duration = Duration::from_millis(5);
/// How long to wait for a peer's answer before asking for a missing block again.
const REQUEST_AGAIN: Duration = Duration::from_millis(250);

/// What the engine runs with.
pub(crate) struct EngineConfig {
    /// This validator's key.
    pub(crate) key: ed25519::PrivateKey,
    /// Its share of the threshold key.
    pub(crate) share: Share,
    /// The threshold key's public polynomial.
    pub(crate) polynomial: Polynomial,
    /// Every validator's key and p2p address, in genesis order.
    pub(crate) peers: Vec<(ed25519::PublicKey, SocketAddr)>,
    /// Where this validator listens.
    pub(crate) listen: SocketAddr,
    /// Where the engine keeps its journal.
    pub(crate) dir: PathBuf,
    /// How long a leader has to propose before the view is skipped.
    pub(crate) leader_timeout: Duration,
}

/// The digest simplex orders for a block hash.
fn digest(hash: B256) -> Digest {
    Digest::from(hash.0)
}

fn hash(digest: &Digest) -> B256 {
    B256::from_slice(digest.as_ref())
}

/// A finalization certificate taken apart: the proposal simplex signed, the exact bytes that
/// were hashed to G1, and the recovered threshold signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// The consensus epoch (always 0: the validator set never changes).
    pub epoch: u64,
    /// The view (round) of the finalized proposal.
    pub view: u64,
    /// The view of its parent.
    pub parent_view: u64,
    /// The finalized block's hash (the proposal's payload).
    pub block_hash: B256,
    /// The signature's namespace: `verinfer_FINALIZE`.
    pub namespace: alloy_primitives::Bytes,
    /// The proposal's encoding: varint(epoch) ‖ varint(view) ‖ varint(parentView) ‖ blockHash.
    pub message: alloy_primitives::Bytes,
    /// What was hashed to G1: varint(len(namespace)) ‖ namespace ‖ message.
    pub signed_message: alloy_primitives::Bytes,
    /// The threshold signature (G1, 48 bytes compressed).
    pub signature: alloy_primitives::Bytes,
    /// The signature in EIP-2537's encoding (128 bytes), as a light client takes it.
    pub signature_eip2537: alloy_primitives::Bytes,
}

fn decode(certificate: &[u8]) -> Result<Finalization<Scheme, Digest>, String> {
    Finalization::<Scheme, Digest>::decode_cfg(certificate.to_vec(), &())
        .map_err(|e| format!("the certificate does not decode: {e}"))
}

/// Take a stored finalization certificate apart.
pub fn decode_certificate(certificate: &[u8]) -> Result<Certificate, String> {
    let decoded = decode(certificate)?;
    let namespace = simplex::scheme::Namespace::new(NAMESPACE).finalize;
    let message = decoded.proposal.encode().to_vec();
    let signature = decoded.certificate.encode().to_vec();
    let signature_eip2537 = super::threshold::g1_eip2537(&signature)?;
    Ok(Certificate {
        epoch: decoded.proposal.round.epoch().get(),
        view: decoded.view().get(),
        parent_view: decoded.proposal.parent.get(),
        block_hash: hash(&decoded.proposal.payload),
        signed_message: commonware_utils::union_unique(&namespace, &message).into(),
        namespace: namespace.into(),
        message: message.into(),
        signature: signature.into(),
        signature_eip2537: signature_eip2537.to_vec().into(),
    })
}

/// Check a stored finalization against the validators' group key: it decodes, is for the view
/// it says, names `certified` (the hash of the block it certifies), and its threshold
/// signature verifies.
pub(crate) fn check_finalization(
    group_key: &<Variant as commonware_cryptography::bls12381::primitives::variant::Variant>::Public,
    certified: B256,
    finalization: &StoredFinalization,
) -> Result<(), String> {
    let decoded = decode(&finalization.certificate)?;
    if decoded.proposal.payload != digest(certified) {
        return Err(format!(
            "the certificate is for {}, not block {certified}",
            hash(&decoded.proposal.payload)
        ));
    }
    if decoded.view().get() != finalization.view {
        return Err(format!(
            "the certificate is for view {}, the block says {}",
            decoded.view().get(),
            finalization.view
        ));
    }
    let verifier = Scheme::certificate_verifier(NAMESPACE, *group_key);
    if !decoded.verify(&mut commonware_utils::sys_rng(), &verifier, &Sequential) {
        return Err(
            "the certificate's threshold signature does not verify against the genesis group key"
                .into(),
        );
    }
    Ok(())
}

/// Run the engine on this thread until the process ends.
pub(crate) fn run(
    config: EngineConfig,
    validator: Validator,
    gossip: mpsc::UnboundedReceiver<Shared>,
) {
    let runtime_config = runtime::Config::new()
        .with_worker_threads(2)
        .with_storage_directory(config.dir.clone());
    runtime::Runner::new(runtime_config).start(async move |context| {
        let handshake = cups::Cups::<_, ChaCha20Poly1305>::new(
            sake::Sake {
                signer: config.key.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let p2p = lookup::Config::local(
            handshake,
            NAMESPACE,
            config.listen,
            NonZeroUsize::new(config.peers.len().max(1)).unwrap_or(NZUsize!(1)),
            MAX_MESSAGE_BYTES,
            NZUsize!(4096),
        );
        let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
        let addresses: Map<ed25519::PublicKey, Address> = match config
            .peers
            .iter()
            .map(|(key, address)| (key.clone(), Address::from(*address)))
            .try_collect()
        {
            Ok(map) => map,
            Err(_) => {
                tracing::error!("the genesis validator keys are not unique");
                return;
            }
        };
        let _ = oracle.track(0, addresses);
        let rate = Quota::per_second(NZU32!(1_000));
        let votes = network.register(VOTES, rate);
        let certificates = network.register(CERTIFICATES, rate);
        let resolver = network.register(RESOLVER, rate);
        let blocks = network.register(BLOCKS, rate);
        let transactions = network.register(TRANSACTIONS, rate);
        let models = network.register(MODELS, Quota::per_second(NZU32!(10)));

        let participants: Set<ed25519::PublicKey> = match config
            .peers
            .iter()
            .map(|(key, _)| key.clone())
            .try_collect()
        {
            Ok(set) => set,
            Err(_) => return,
        };
        let me = commonware_cryptography::Signer::public_key(&config.key);
        if commonware_utils::ordered::Quorum::index(&participants, &me) != Some(config.share.index)
        {
            tracing::error!("this validator's threshold share is another validator's");
            return;
        }
        let Some(scheme) = Scheme::signer(NAMESPACE, participants, config.polynomial, config.share)
        else {
            tracing::error!(
                "this validator's threshold share does not match the genesis polynomial"
            );
            return;
        };
        let genesis = digest(validator.genesis_hash());
        let (sender, mailbox) = mpsc::unbounded_channel();
        let application = Mailbox { sender };
        let engine_config = simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker: oracle,
            automaton: application.clone(),
            relay: application.clone(),
            reporter: application,
            strategy: Sequential,
            partition: "consensus".into(),
            mailbox_size: NZUsize!(4096),
            epoch: Epoch::zero(),
            floor: simplex::Floor::Genesis(genesis),
            replay_buffer: NZUsize!(1 << 20),
            write_buffer: NZUsize!(1 << 20),
            page_cache: CacheRef::new(NZU16!(16_384), NZUsize!(1_000)),
            leader_timeout: config.leader_timeout,
            certification_timeout: config.leader_timeout * 2,
            timeout_retry: config.leader_timeout,
            view_retention: ViewDelta::new(64),
            skip: simplex::SkipPolicy::Disabled,
            fetch_timeout: NZDuration!(Duration::from_secs(1)),
            fetch_retry_delay: Duration::from_millis(100),
            forward: simplex::ForwardPolicy::Disabled,
            track_historical_votes: false,
        };
        let engine = simplex::Engine::new(context.child("engine"), engine_config);
        network.start();
        engine.start(votes, certificates, resolver);
        Actor {
            validator,
            mailbox,
            gossip,
            blocks,
            transactions,
            models,
            proposing: Vec::new(),
            verifying: Vec::new(),
            finalizing: Vec::new(),
            requested: HashMap::new(),
        }
        .run()
        .await;
    });
}

/// What simplex asks of the application.
enum Message {
    Propose {
        context: Context<Digest, ed25519::PublicKey>,
        response: oneshot::Sender<Digest>,
    },
    Verify {
        context: Context<Digest, ed25519::PublicKey>,
        payload: Digest,
        response: oneshot::Sender<bool>,
    },
    Broadcast {
        payload: Digest,
        plan: Plan<ed25519::PublicKey>,
    },
    Finalized {
        payload: Digest,
        view: u64,
        certificate: Vec<u8>,
    },
}

/// simplex's handle on the application: every call becomes a message to the [`Actor`].
#[derive(Clone)]
struct Mailbox {
    sender: mpsc::UnboundedSender<Message>,
}

impl Mailbox {
    fn send(&self, message: Message) -> Feedback {
        match self.sender.send(message) {
            Ok(()) => Feedback::Ok,
            Err(_) => Feedback::Closed,
        }
    }
}

impl Automaton for Mailbox {
    type Context = Context<Digest, ed25519::PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        self.send(Message::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        self.send(Message::Verify {
            context,
            payload,
            response,
        });
        receiver
    }
}

impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = ed25519::PublicKey;
    type Plan = Plan<ed25519::PublicKey>;

    fn broadcast(&mut self, payload: Digest, plan: Self::Plan) -> Feedback {
        self.send(Message::Broadcast { payload, plan })
    }
}

impl Reporter for Mailbox {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Activity::Finalization(finalization) = activity {
            let view = finalization.view().get();
            let payload = finalization.proposal.payload;
            let certificate = finalization.encode().to_vec();
            return self.send(Message::Finalized {
                payload,
                view,
                certificate,
            });
        }
        Feedback::Ok
    }
}

/// Send on a p2p channel, unless the message is over the network's size limit (sending it
/// would panic in the p2p layer): then say so in the log.
fn send(
    sender: &mut lookup::Sender<ed25519::PublicKey, commonware_runtime::tokio::Context>,
    recipients: Recipients<ed25519::PublicKey>,
    message: Vec<u8>,
    priority: bool,
    what: &str,
) {
    if message.len() > MAX_MESSAGE_BYTES as usize {
        tracing::error!(
            "cannot send {what} of {} bytes to the other validators: the limit is {MAX_MESSAGE_BYTES}",
            message.len()
        );
        return;
    }
    let _ = sender.send(recipients, message, priority);
}

/// A message on the `BLOCKS` and `MODELS` channels: a block's or a model's bytes, or a request
/// for those of a hash.
enum Wire {
    Bytes(Vec<u8>),
    Request(B256),
}

impl Wire {
    fn encode(self) -> Vec<u8> {
        match self {
            Self::Bytes(bytes) => [&[0u8][..], &bytes].concat(),
            Self::Request(hash) => [&[1u8][..], hash.as_slice()].concat(),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (0, rest) => Some(Self::Bytes(rest.to_vec())),
            (1, rest) if rest.len() == 32 => Some(Self::Request(B256::from_slice(rest))),
            _ => None,
        }
    }
}

type Channel = (
    lookup::Sender<ed25519::PublicKey, commonware_runtime::tokio::Context>,
    lookup::Receiver<ed25519::PublicKey>,
);

/// The application side: one task owning the [`Validator`], serving simplex's requests in
/// order, and retrying those that must wait (a parent not applied yet, bytes not arrived).
struct Actor {
    validator: Validator,
    mailbox: mpsc::UnboundedReceiver<Message>,
    gossip: mpsc::UnboundedReceiver<Shared>,
    blocks: Channel,
    transactions: Channel,
    models: Channel,
    proposing: Vec<(B256, oneshot::Sender<Digest>)>,
    verifying: Vec<(B256, B256, oneshot::Sender<bool>)>,
    finalizing: Vec<(B256, u64, Vec<u8>)>,
    /// Blocks asked of the peers, and when.
    requested: HashMap<B256, Instant>,
}

impl Actor {
    async fn run(mut self) {
        let mut retry = tokio::time::interval(RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = self.mailbox.recv() => match message {
                    Some(message) => self.handle(message),
                    None => return,
                },
                shared = self.gossip.recv() => match shared {
                    Some(Shared::Transaction(raw)) => {
                        send(&mut self.transactions.0, Recipients::All, raw, false, "a transaction");
                        // A leader waiting for transactions proposes at once.
                        self.retry_proposals();
                    }
                    Some(Shared::Model(bytes)) => {
                        let message = Wire::Bytes(bytes).encode();
                        send(&mut self.models.0, Recipients::All, message, false, "an uploaded model");
                    }
                    None => return,
                },
                received = self.blocks.1.recv() => match received {
                    Ok((peer, bytes)) => {
                        self.validator.heard_from(Some(peer.to_string()));
                        self.on_block_message(peer, bytes.as_ref());
                    }
                    Err(e) => {
                        tracing::error!("block channel closed: {e}");
                        return;
                    }
                },
                received = self.models.1.recv() => match received {
                    Ok((peer, bytes)) => {
                        self.validator.heard_from(Some(peer.to_string()));
                        self.on_model_message(peer, bytes.as_ref());
                    }
                    Err(e) => {
                        tracing::error!("model channel closed: {e}");
                        return;
                    }
                },
                received = self.transactions.1.recv() => match received {
                    Ok((peer, raw)) => {
                        self.validator.heard_from(Some(peer.to_string()));
                        self.validator.add_shared_transaction(raw.as_ref());
                        self.retry_proposals();
                    }
                    Err(e) => {
                        tracing::error!("transaction channel closed: {e}");
                        return;
                    }
                },
                _ = retry.tick() => self.retry(),
            }
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Propose { context, response } => {
                self.proposing.push((hash(&context.parent.1), response));
                self.retry_proposals();
            }
            Message::Verify {
                context,
                payload,
                response,
            } => {
                tracing::debug!(block = %hash(&payload), view = context.round.view().get(), "asked to verify");
                self.verifying
                    .push((hash(&context.parent.1), hash(&payload), response));
                self.retry_checks();
            }
            Message::Broadcast { payload, plan } => {
                tracing::debug!(block = %hash(&payload), "broadcasting");
                let recipients = match plan {
                    Plan::Forward { recipients, .. } => recipients,
                    _ => Recipients::All,
                };
                if let Some(proposal) = self.validator.proposal(&hash(&payload)) {
                    let message = Wire::Bytes(proposal.encode()).encode();
                    send(&mut self.blocks.0, recipients, message, true, "a block");
                }
            }
            Message::Finalized {
                payload,
                view,
                certificate,
            } => {
                self.finalizing.push((hash(&payload), view, certificate));
                self.retry_finalizations();
            }
        }
    }

    fn on_block_message(&mut self, peer: ed25519::PublicKey, bytes: &[u8]) {
        match Wire::decode(bytes) {
            Some(Wire::Bytes(bytes)) => match Proposal::decode(&bytes) {
                Ok(proposal) => {
                    tracing::debug!(block = %proposal.hash(), %peer, "block received");
                    self.validator.add_proposal(proposal);
                    self.retry();
                }
                Err(e) => tracing::warn!("undecodable block from {peer}: {e}"),
            },
            Some(Wire::Request(hash)) => {
                if let Some(proposal) = self.validator.proposal(&hash) {
                    let message = Wire::Bytes(proposal.encode()).encode();
                    send(
                        &mut self.blocks.0,
                        Recipients::One(peer),
                        message,
                        false,
                        "a block",
                    );
                }
            }
            None => tracing::warn!("malformed block message from {peer}"),
        }
    }

    fn on_model_message(&mut self, peer: ed25519::PublicKey, bytes: &[u8]) {
        match Wire::decode(bytes) {
            Some(Wire::Bytes(bytes)) => self.validator.admit_shared_model(peer.to_string(), bytes),
            Some(Wire::Request(id)) => {
                if let Some(bytes) = self.validator.model_bytes(&id) {
                    let message = Wire::Bytes(bytes).encode();
                    send(
                        &mut self.models.0,
                        Recipients::One(peer),
                        message,
                        false,
                        "a model",
                    );
                }
            }
            None => tracing::warn!("malformed model message from {peer}"),
        }
    }

    /// Whether to ask the peers for `id` now: never asked, or last asked `every` ago (then it
    /// counts as asked now).
    fn due(&mut self, id: B256, every: Duration) -> bool {
        let due = self
            .requested
            .get(&id)
            .is_none_or(|at| at.elapsed() >= every);
        if due {
            self.requested.insert(id, Instant::now());
        }
        due
    }

    /// Ask the peers for models (again only after 4 × [`REQUEST_AGAIN`]).
    fn request_models(&mut self, models: Vec<B256>) {
        for id in models {
            if self.due(id, REQUEST_AGAIN * 4) {
                tracing::info!(model = %id, "asking the other validators for a model");
                let message = Wire::Request(id).encode();
                send(
                    &mut self.models.0,
                    Recipients::All,
                    message,
                    false,
                    "a model request",
                );
            }
        }
    }

    fn retry(&mut self) {
        self.validator.heard_from(None);
        self.retry_finalizations();
        self.retry_checks();
        self.retry_proposals();
    }

    fn retry_proposals(&mut self) {
        let mut waiting = Vec::new();
        for (parent, response) in std::mem::take(&mut self.proposing) {
            if response.is_closed() {
                continue;
            }
            match self.validator.try_propose(parent) {
                Some(proposal) => {
                    let _ = response.send(digest(proposal.hash()));
                }
                None => waiting.push((parent, response)),
            }
        }
        self.proposing = waiting;
    }

    fn retry_checks(&mut self) {
        let mut waiting = Vec::new();
        for (parent, block, response) in std::mem::take(&mut self.verifying) {
            if response.is_closed() {
                continue;
            }
            match self.validator.verify(parent, block) {
                Verdict::Valid => {
                    let _ = response.send(true);
                }
                Verdict::Invalid(_) => {
                    let _ = response.send(false);
                }
                Verdict::NotYet => waiting.push((parent, block, response)),
                Verdict::NeedModels(models) => {
                    self.request_models(models);
                    waiting.push((parent, block, response));
                }
            }
        }
        self.verifying = waiting;
    }

    fn retry_finalizations(&mut self) {
        // Oldest first: a later finalization may need an earlier one applied.
        self.finalizing.sort_by_key(|(_, view, _)| *view);
        let mut waiting = Vec::new();
        for (block, view, certificate) in std::mem::take(&mut self.finalizing) {
            match self.validator.finalize(block, view, &certificate) {
                Finalized::Applied | Finalized::Known => {}
                Finalized::NeedModels(models) => {
                    self.request_models(models);
                    waiting.push((block, view, certificate));
                }
                Finalized::Missing(missing) => {
                    if self.due(missing, REQUEST_AGAIN) {
                        let message = Wire::Request(missing).encode();
                        send(
                            &mut self.blocks.0,
                            Recipients::All,
                            message,
                            false,
                            "a block request",
                        );
                    }
                    waiting.push((block, view, certificate));
                }
            }
        }
        if waiting.is_empty() && self.verifying.is_empty() {
            self.requested.clear();
        }
        self.finalizing = waiting;
    }
}
