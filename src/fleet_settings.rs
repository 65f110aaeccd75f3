//! `.kube-dc.yaml` at the fleet root: settings the whole team shares through the repo.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::safe_fs;

pub const FILE_NAME: &str = ".kube-dc.yaml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSettings {
    /// Commit message template for adopt/rotate (see `git::MessageTemplate`).
    pub commit_message: Option<String>,
    /// Shell command run at the start of every `use` session (see `breakglass::audit::hook`).
    pub on_use: Option<String>,
}

impl FleetSettings {
    /// The fleet's settings; all defaults when the file does not exist.
    pub fn load(fleet_root: &Path) -> Result<FleetSettings> {
        let path = fleet_root.join(FILE_NAME);
        let bytes = match safe_fs::read_beneath(
            fleet_root,
            Path::new(FILE_NAME),
            safe_fs::FLEET_SETTINGS,
        ) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(FleetSettings::default()),
            Err(e) => return Err(e.usage()),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::usage(format!("{}: not UTF-8 text", path.display())))?;
        FleetSettings::parse(&text).map_err(|e| Error::usage(format!("{}: {e}", path.display())))
    }

    fn parse(text: &str) -> std::result::Result<FleetSettings, String> {
        if text.trim().is_empty() {
            return Ok(FleetSettings::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_keys_and_rejects_typos() {
        let s = FleetSettings::parse("commit_message: \"{cluster}: {action} ({date})\"\n").unwrap();
        assert_eq!(
            s.commit_message.as_deref(),
            Some("{cluster}: {action} ({date})")
        );
        assert!(FleetSettings::parse("").unwrap().commit_message.is_none());
        let s = FleetSettings::parse("on_use: notify-chat \"$KUBE_DC_CLUSTER\"\n").unwrap();
        assert_eq!(
            s.on_use.as_deref(),
            Some("notify-chat \"$KUBE_DC_CLUSTER\"")
        );
        let err = FleetSettings::parse("commit_mesage: x\n").unwrap_err();
        assert!(err.contains("commit_mesage"), "{err}");
    }
}
