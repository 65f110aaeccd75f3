//! The cluster's rotation lock ([`crate::cluster::lease`]) as adopt, rotate and
//! self-rotation hold it: taken with the login they work with, released at the end
//! whatever the outcome, and on a Ctrl-C/SIGTERM that ends the run.

use kube::Client;

use super::progress::{Progress, Step};
use super::target::Target;
use crate::breakglass::audit::Person;
use crate::cluster::lease::{HolderRecord, Lock};
use crate::error::Result;

/// Runs `work` holding the rotation lock of `target`'s cluster, taken with `client`.
pub async fn holding<T>(
    client: &Client,
    target: &Target,
    command: &str,
    progress: &dyn Progress,
    work: impl AsyncFnOnce(&Lock) -> Result<T>,
) -> Result<T> {
    let name = target.cluster.name();
    let person = Person::here(target.cluster.fleet_root());
    let holder = HolderRecord::here(person.git, person.user, person.host, command);
    let notify = |note: String| progress.step(name, Step::Lock(note));
    let namespace = &target.identity.namespace;
    let lock = Lock::acquire(client, namespace, &holder, target.lock_wait, &notify).await?;
    target.interrupts.release_on_exit(lock.releaser());
    let result = work(&lock).await;
    if let Err(e) = lock.release().await {
        let note = format!(
            "could not release the rotation lock ({e}); it expires by itself within {}s",
            crate::cluster::lease::DURATION.as_secs()
        );
        progress.step(name, Step::Warning(note));
    }
    result
}
