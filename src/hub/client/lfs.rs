//! Git LFS transfers as the Hub speaks them: the batch call (`/{repo}.git/info/lfs/objects/batch`), basic
//! uploads (one `PUT`), multipart uploads (ranged part `PUT`s sent concurrently, ETags collected, then the
//! completion `POST`); the verify action is not called (see [`Xfer::upload`]). Upload and completion URLs get no
//! token (they are presigned on the real Hub).
//! Bodies stream from disk with `Content-Length` set; memory use is a few blocks per part in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::resume::ResumeState;
use super::upload::{ProgressEvent, UploadProgress};
use super::{Activity, Budget, HubClient, HubError, enc_repo};
use crate::model::{ModelFile, RepoId};

const LFS_JSON: &str = "application/vnd.git-lfs+json";
/// At most this many objects per batch call.
pub const BATCH_MAX: usize = 256;
const READ_BLOCK: usize = 256 * 1024;

#[derive(Debug, Clone, Serialize)]
/// One object of an LFS batch request.
pub struct BatchObjectRequest {
    /// The object's sha256 (lowercase hex).
    pub oid: String,
    /// Its size in bytes.
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
/// The Hub's answer to an LFS batch request.
pub struct BatchResponse {
    #[serde(default)]
    /// The transfer the Hub picked (`basic`, `multipart`, `xet`); absent: `basic`.
    pub transfer: Option<String>,
    /// One entry per requested object.
    pub objects: Vec<BatchObject>,
}

impl BatchResponse {
    /// The Hub picked Xet: the objects go through the CAS, not through upload actions.
    pub fn is_xet(&self) -> bool {
        self.transfer.as_deref() == Some("xet")
    }

    /// The first per-object error, if any.
    pub fn first_error(&self) -> Option<HubError> {
        self.objects.iter().find_map(|o| {
            o.error.as_ref().map(|e| {
                HubError::protocol(
                    "LFS batch",
                    format!("object {} refused ({}): {}", o.oid, e.code, e.message),
                )
            })
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
/// One object of a batch answer.
pub struct BatchObject {
    /// The object's sha256.
    pub oid: String,
    /// Its size in bytes.
    pub size: u64,
    #[serde(default)]
    /// What to do to send it; `None`: the Hub has it already.
    pub actions: Option<Actions>,
    #[serde(default)]
    /// Why the Hub refused the object, if it did.
    pub error: Option<BatchError>,
}

#[derive(Debug, Clone, Deserialize)]
/// A per-object error of a batch answer.
pub struct BatchError {
    /// The error code (HTTP-like: 404, 422, …).
    pub code: i64,
    /// The Hub's message.
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
/// The actions of one object.
pub struct Actions {
    #[serde(default)]
    /// Where to upload the object (`basic`: one PUT; `multipart`: the completion URL and part URLs in the header).
    pub upload: Option<Action>,
    #[serde(default)]
    /// Where to confirm the upload (not called, see [`Xfer::upload`]).
    pub verify: Option<Action>,
}

#[derive(Debug, Clone, Deserialize)]
/// One action: a URL and the headers to send with it.
pub struct Action {
    /// The URL.
    pub href: String,
    #[serde(default)]
    /// Headers to send (multipart: `chunk_size` and the numbered part URLs).
    pub header: serde_json::Map<String, serde_json::Value>,
}

/// How one object is to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// Already stored: nothing to send.
    Stored,
    /// One PUT of the whole object.
    Basic {
        /// Where to PUT it.
        href: String,
    },
    /// Parts PUT one by one, then a completion POST.
    Multipart {
        /// Where to POST the completion.
        completion: String,
        /// Bytes per part (the last may be shorter).
        chunk_size: u64,
        /// The part URLs, in part order.
        parts: Vec<String>,
    },
}

impl BatchObject {
    /// Interprets the actions: no actions = stored; `chunk_size` in the upload header = multipart.
    pub fn transfer(&self) -> Result<Transfer, HubError> {
        let op = "LFS batch";
        if let Some(e) = &self.error {
            return Err(HubError::protocol(
                op,
                format!("object {} refused ({}): {}", self.oid, e.code, e.message),
            ));
        }
        let Some(upload) = self.actions.as_ref().and_then(|a| a.upload.as_ref()) else {
            return Ok(Transfer::Stored);
        };
        let Some(cs) = upload.header.get("chunk_size") else {
            return Ok(Transfer::Basic {
                href: upload.href.clone(),
            });
        };
        let chunk_size = match cs {
            serde_json::Value::String(s) => s.parse::<u64>().ok(),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .filter(|c| *c > 0)
        .ok_or_else(|| HubError::protocol(op, format!("bad chunk_size {cs} for {}", self.oid)))?;
        let mut numbered: Vec<(u64, String)> = upload
            .header
            .iter()
            .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
            .map(|(k, v)| {
                let url = v.as_str().map(str::to_string).ok_or_else(|| {
                    HubError::protocol(op, format!("part {k} of {} has no URL", self.oid))
                })?;
                Ok((k.parse::<u64>().unwrap_or(u64::MAX), url))
            })
            .collect::<Result<_, HubError>>()?;
        numbered.sort();
        let expected = self.size.div_ceil(chunk_size) as usize;
        if numbered.len() != expected
            || numbered
                .iter()
                .enumerate()
                .any(|(i, (n, _))| *n != i as u64 + 1)
        {
            return Err(HubError::protocol(
                op,
                format!(
                    "object {} of {} bytes with chunk_size {chunk_size} needs parts 1..={expected}, got {}",
                    self.oid,
                    self.size,
                    numbered.len()
                ),
            ));
        }
        Ok(Transfer::Multipart {
            completion: upload.href.clone(),
            chunk_size,
            parts: numbered.into_iter().map(|(_, u)| u).collect(),
        })
    }

    /// The verify action's URL, if the Hub gave one.
    pub fn verify_href(&self) -> Option<&str> {
        self.actions
            .as_ref()?
            .verify
            .as_ref()
            .map(|v| v.href.as_str())
    }
}

/// Byte and part counters of one upload (what a report and the resume test look at).
#[derive(Debug, Default)]
pub struct Counters {
    /// Body bytes put on the wire (retries included).
    pub bytes_sent: AtomicU64,
    /// Parts put on the wire (retries included).
    pub parts_sent: AtomicU64,
    /// Parts skipped because the resume state says the server has them.
    pub parts_resumed: AtomicU64,
}

/// Everything a transfer needs besides the object.
pub struct Xfer<'a> {
    /// The client (its transfer HTTP client and limits).
    pub client: &'a HubClient,
    /// The repository uploaded to.
    pub repo: &'a RepoId,
    /// The resume state (parts and objects already sent).
    pub state: &'a ResumeState,
    /// Where progress goes.
    pub progress: &'a Arc<dyn UploadProgress>,
    /// The upload's byte and part counters.
    pub counters: &'a Arc<Counters>,
}

impl HubClient {
    /// `POST /{repo}.git/info/lfs/objects/batch` for up to [`BATCH_MAX`] objects, offering `xet` too when
    /// `offer_xet` (the answer's `transfer` then says which one the Hub picked: [`BatchResponse::is_xet`]).
    pub async fn lfs_batch(
        &self,
        repo: &RepoId,
        revision: &str,
        objects: &[BatchObjectRequest],
        offer_xet: bool,
    ) -> Result<BatchResponse, HubError> {
        let op = format!("LFS batch for {repo}");
        let path = format!("/{}.git/info/lfs/objects/batch", enc_repo(repo));
        let transfers: &[&str] = if offer_xet {
            &["basic", "multipart", "xet"]
        } else {
            &["basic", "multipart"]
        };
        let body = serde_json::json!({
            "operation": "upload",
            "transfers": transfers,
            "objects": objects,
            "hash_algo": "sha256",
            "ref": {"name": revision},
        });
        let resp = self
            .send(&op, &self.url(&path), || async {
                Ok(self
                    .request(Method::POST, &path)
                    .header(ACCEPT, LFS_JSON)
                    .header(CONTENT_TYPE, LFS_JSON)
                    .body(serde_json::to_vec(&body).expect("json")))
            })
            .await?;
        let r: BatchResponse = self.json(&op, resp).await?;
        for want in objects {
            if !r.objects.iter().any(|o| o.oid == want.oid) {
                return Err(HubError::protocol(
                    &op,
                    format!("no answer for object {}", want.oid),
                ));
            }
        }
        Ok(r)
    }
}

impl Xfer<'_> {
    /// Sends one object (basic or multipart). `file` must hold the object's bytes.
    pub async fn upload(
        &self,
        file: &ModelFile,
        rel_path: &str,
        obj: &BatchObject,
    ) -> Result<(), HubError> {
        match obj.transfer()? {
            Transfer::Stored => {}
            Transfer::Basic { href } => {
                let op = format!("upload {rel_path}");
                let _permit = self.client.limits().bytes_in_flight(obj.size).await;
                let activity = Activity::new();
                let (op, href, activity_ref) = (&op, &href, &activity);
                self.client
                    .retrying(
                        op,
                        href,
                        Budget::Transfer(activity.clone()),
                        |_| async move {
                            let body = self.body(file, rel_path, 0, obj.size, activity_ref).await?;
                            let rb = self
                                .client
                                .transfer()
                                .put(href)
                                .header(CONTENT_LENGTH, obj.size)
                                .body(body);
                            self.client.send_once(op, rb).await
                        },
                    )
                    .await?;
            }
            Transfer::Multipart {
                completion,
                chunk_size,
                parts,
            } => {
                self.multipart(file, rel_path, obj, &completion, chunk_size, &parts)
                    .await?
            }
        }
        // No verify call, even when the batch offers one: the 2xx of the PUT (basic; the storage checked the
        // sha256) or of the completion (multipart) already says the object is stored, and the commit checks every
        // lfsFile object again. Hugging Face's own JS client (huggingface.js `commit.ts`) never calls verify either;
        // it would be one more API-quota request per file (`crate::hub::quota`).
        self.state.record_stored(&obj.oid)
    }

    async fn multipart(
        &self,
        file: &ModelFile,
        rel_path: &str,
        obj: &BatchObject,
        completion: &str,
        chunk_size: u64,
        parts: &[String],
    ) -> Result<(), HubError> {
        let n = parts.len();
        // What the server already holds of this upload wins over what we remember: it also covers parts whose
        // answer was lost when the previous run died, and a lost or stale resume file.
        let mut resumed = match self.held_parts(completion, obj, chunk_size, n).await {
            Some(held) => held,
            None => self.state.multipart(&obj.oid, chunk_size, n).etags,
        };
        for attempt in 0..2 {
            let done: BTreeMap<usize, String> = resumed.clone();
            if !done.is_empty() {
                self.counters
                    .parts_resumed
                    .fetch_add(done.len() as u64, Ordering::Relaxed);
                let bytes: u64 = done
                    .keys()
                    .map(|i| part_len(obj.size, chunk_size, *i))
                    .sum();
                self.progress.event(ProgressEvent::FileBytes {
                    repo: self.repo.to_string(),
                    path: rel_path.to_string(),
                    bytes,
                });
                tracing::info!(
                    path = rel_path,
                    parts = done.len(),
                    of = n,
                    "resuming multipart upload"
                );
            }
            let todo: Vec<usize> = (1..=n).filter(|i| !done.contains_key(i)).collect();
            let concurrency = self.client.limits().config().part_concurrency;
            let sent: Vec<(usize, String)> = futures_util::stream::iter(todo)
                .map(|i| self.part(file, rel_path, obj, chunk_size, i, &parts[i - 1]))
                .buffer_unordered(concurrency)
                .try_collect()
                .await?;
            let mut etags = done;
            etags.extend(sent);
            let body = serde_json::json!({
                "oid": obj.oid,
                "parts": etags.iter().map(|(i, e)| serde_json::json!({"partNumber": i, "etag": e})).collect::<Vec<_>>(),
            });
            let op = format!("complete upload of {rel_path}");
            // The server assembles and checks the whole object before it answers: give it time by size.
            let budget = self.client.long_budget(completion_time(obj.size));
            let (op_ref, body) = (&op, &body);
            let res = self
                .client
                .retrying(&op, completion, budget, |deadline| async move {
                    let rb = self
                        .client
                        .transfer()
                        .post(completion)
                        .header(ACCEPT, LFS_JSON)
                        .header(CONTENT_TYPE, LFS_JSON)
                        .timeout(deadline.attempt_timeout())
                        .body(serde_json::to_vec(body).expect("json"));
                    self.client.send_once(op_ref, rb).await
                })
                .await;
            match res {
                Ok(_) => return Ok(()),
                // Parts remembered from an earlier run were not accepted (the server forgot them, or the
                // new URLs belong to a fresh upload session): send everything once more.
                Err(e)
                    if attempt == 0
                        && !resumed.is_empty()
                        && e.status().is_some_and(|s| s.is_client_error()) =>
                {
                    tracing::warn!(path = rel_path, error = %e, "remembered parts were refused; re-sending all parts");
                    self.state.forget_parts(&obj.oid)?;
                    resumed.clear();
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Asks the upload URL which parts the server holds (`GET <completion href>`, like S3 `ListParts`). `None`
    /// when the server cannot tell (another Hub, an expired upload, a malformed answer): the resume file decides.
    async fn held_parts(
        &self,
        completion: &str,
        obj: &BatchObject,
        chunk_size: u64,
        part_count: usize,
    ) -> Option<BTreeMap<usize, String>> {
        #[derive(Deserialize)]
        struct Listing {
            oid: String,
            size: u64,
            chunk_size: u64,
            parts: Vec<Held>,
        }
        #[derive(Deserialize)]
        struct Held {
            #[serde(rename = "partNumber")]
            part_number: usize,
            etag: String,
        }
        let op = format!("list uploaded parts of {}", obj.oid);
        let rb = self
            .client
            .transfer()
            .get(completion)
            .header(ACCEPT, LFS_JSON)
            .timeout(self.client.api_timeout());
        let listing: Listing = match self.client.send_once(&op, rb).await {
            Ok(resp) => self.client.json(&op, resp).await.ok()?,
            Err(e) => {
                tracing::debug!(error = %e, "the Hub does not list uploaded parts; using the resume file");
                return None;
            }
        };
        if listing.oid != obj.oid || listing.size != obj.size || listing.chunk_size != chunk_size {
            return None;
        }
        Some(
            listing
                .parts
                .into_iter()
                .filter(|p| (1..=part_count).contains(&p.part_number) && !p.etag.is_empty())
                .map(|p| (p.part_number, p.etag))
                .collect(),
        )
    }

    async fn part(
        &self,
        file: &ModelFile,
        rel_path: &str,
        obj: &BatchObject,
        chunk_size: u64,
        i: usize,
        url: &str,
    ) -> Result<(usize, String), HubError> {
        let offset = (i as u64 - 1) * chunk_size;
        let len = part_len(obj.size, chunk_size, i);
        let _permit = self.client.limits().bytes_in_flight(len).await;
        let op = format!("upload part {i} of {rel_path}");
        let activity = Activity::new();
        let (op_ref, activity_ref) = (&op, &activity);
        let resp = self
            .client
            .retrying(
                &op,
                url,
                Budget::Transfer(activity.clone()),
                |_| async move {
                    let body = self.body(file, rel_path, offset, len, activity_ref).await?;
                    let rb = self
                        .client
                        .transfer()
                        .put(url)
                        .header(CONTENT_LENGTH, len)
                        .body(body);
                    self.client.send_once(op_ref, rb).await
                },
            )
            .await?;
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| HubError::protocol_at(&op, url, "part answer has no ETag"))?
            .to_string();
        self.counters.parts_sent.fetch_add(1, Ordering::Relaxed);
        self.state.record_part(
            &obj.oid,
            chunk_size,
            obj.size.div_ceil(chunk_size) as usize,
            i,
            &etag,
        )?;
        Ok((i, etag))
    }

    /// A streaming body over `len` bytes of `file` from `offset`, counting what goes out. Each block the HTTP
    /// stack takes counts as progress for the stall timeout (it takes blocks as the socket drains).
    async fn body(
        &self,
        file: &ModelFile,
        rel_path: &str,
        offset: u64,
        len: u64,
        activity: &Arc<Activity>,
    ) -> Result<reqwest::Body, HubError> {
        // Through the checked open: a file swapped since the model folder was checked is refused, not sent.
        let checked = file.clone();
        let f = tokio::task::spawn_blocking(move || checked.open())
            .await
            .map_err(|e| HubError::task(format!("opening {}", file.shown.display()), e))?
            .map_err(|e| HubError::io(&file.shown, e))?;
        let mut f = tokio::fs::File::from_std(f);
        f.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| HubError::io(&file.shown, e))?;
        let reader = f.take(len);
        let counters = self.counters.clone();
        let progress = self.progress.clone();
        let activity = activity.clone();
        let mut pos = 0u64;
        let repo = self.repo.to_string();
        let path = rel_path.to_string();
        let stream =
            tokio_util::io::ReaderStream::with_capacity(reader, READ_BLOCK).inspect(move |chunk| {
                if let Ok(c) = chunk {
                    pos += c.len() as u64;
                    activity.moved(pos);
                    counters
                        .bytes_sent
                        .fetch_add(c.len() as u64, Ordering::Relaxed);
                    progress.event(ProgressEvent::FileBytes {
                        repo: repo.clone(),
                        path: path.clone(),
                        bytes: c.len() as u64,
                    });
                }
            });
        Ok(reqwest::Body::wrap_stream(stream))
    }
}

/// How long a multipart completion may take per attempt: the server assembles and checks the whole object before it
/// answers (a few hundred MB/s on our server; 64 MiB/s leaves room), and never less than the API timeout.
fn completion_time(size: u64) -> Duration {
    Duration::from_secs(size / (64 << 20))
}

fn part_len(size: u64, chunk_size: u64, i: usize) -> u64 {
    let start = (i as u64 - 1) * chunk_size;
    chunk_size.min(size - start)
}

/// True when a status from an upload URL most likely means the URL expired (re-batch instead of retrying).
pub fn is_expired_url(status: StatusCode) -> bool {
    status == StatusCode::FORBIDDEN || status == StatusCode::GONE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(json: serde_json::Value) -> BatchObject {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn no_actions_means_stored() {
        assert_eq!(
            obj(serde_json::json!({"oid":"a","size":1}))
                .transfer()
                .unwrap(),
            Transfer::Stored
        );
    }

    #[test]
    fn basic_and_multipart_are_recognised() {
        let b =
            obj(serde_json::json!({"oid":"a","size":5,"actions":{"upload":{"href":"http://u"}}}));
        assert_eq!(
            b.transfer().unwrap(),
            Transfer::Basic {
                href: "http://u".into()
            }
        );
        let m = obj(
            serde_json::json!({"oid":"a","size":27262976,"actions":{"upload":{"href":"http://c",
            "header":{"chunk_size":"8388608","2":"http://p2","1":"http://p1","10":"x","3":"http://p3","4":"http://p4"}}}}),
        );
        assert!(m.transfer().is_err(), "part 10 is extra");
        let m = obj(
            serde_json::json!({"oid":"a","size":27262976,"actions":{"upload":{"href":"http://c",
            "header":{"chunk_size":8388608,"2":"http://p2","1":"http://p1","3":"http://p3","4":"http://p4"}},
            "verify":{"href":"http://v"}}}),
        );
        match m.transfer().unwrap() {
            Transfer::Multipart {
                chunk_size,
                parts,
                completion,
            } => {
                assert_eq!(chunk_size, 8388608);
                assert_eq!(
                    parts,
                    vec!["http://p1", "http://p2", "http://p3", "http://p4"]
                );
                assert_eq!(completion, "http://c");
            }
            t => panic!("{t:?}"),
        }
        assert_eq!(m.verify_href(), Some("http://v"));
        assert_eq!(part_len(27262976, 8388608, 4), 2097152);
    }

    #[test]
    fn per_object_errors_are_reported() {
        let e =
            obj(serde_json::json!({"oid":"abc","size":1,"error":{"code":404,"message":"gone"}}))
                .transfer()
                .unwrap_err();
        assert!(
            e.to_string().contains("abc") && e.to_string().contains("gone"),
            "{e}"
        );
    }
}
