//! The browser's managed policy, generated from the config: only the conference
//! origins load, camera and microphone only there, and none of the browser's own
//! ways out (devtools, downloads, printing, extensions, new windows, file access,
//! stored passwords or form data, sign-in, sync, Google services).
//!
//! The kiosk enforces the same again over CDP (see kiosk/src/session/guard.rs).

use serde_json::{json, Map, Value};
use stick_manifest::https_url::HttpsUrl;
use stick_manifest::session::SessionPolicy;

/// Chromium's URL filter pattern for exactly one origin: a leading `.` on a host
/// name stops the pattern from matching its subdomains.
pub fn origin_pattern(origin: &str) -> String {
    match HttpsUrl::parse(origin) {
        Ok(url) if url.ipv4().is_none() => {
            let port = if url.port == 443 {
                String::new()
            } else {
                format!(":{}", url.port)
            };
            format!("https://.{}{port}", url.host)
        }
        _ => origin.to_string(),
    }
}

/// What every Chromium of the stick gets, the conference's and the sign-in
/// page's: no camera, microphone or screen capture unless allowed elsewhere, no
/// click-through on a certificate error, none of the browser's own ways out,
/// nothing remembered, no device permission, no calls home.
fn locked_down() -> Map<String, Value> {
    let policy = json!({
        "VideoCaptureAllowed": false,
        "AudioCaptureAllowed": false,
        "ScreenCaptureAllowed": false,
        "SSLErrorOverrideAllowed": false,
        // No tools, files, windows or extensions.
        "DeveloperToolsAvailability": 2,
        "DownloadRestrictions": 3,
        "AllowFileSelectionDialogs": false,
        "PrintingEnabled": false,
        "ExtensionInstallBlocklist": ["*"],
        "BrowserGuestModeEnabled": false,
        "BrowserAddPersonEnabled": false,
        // Nothing remembered about the user.
        "PasswordManagerEnabled": false,
        "AutofillAddressEnabled": false,
        "AutofillCreditCardEnabled": false,
        "BrowserSignin": 0,
        "SyncDisabled": true,
        "SavingBrowserHistoryDisabled": true,
        // No permission a page here needs.
        "DefaultNotificationsSetting": 2,
        "DefaultGeolocationSetting": 2,
        "DefaultSensorsSetting": 2,
        "DefaultSerialGuardSetting": 2,
        "DefaultWebUsbGuardSetting": 2,
        "DefaultWebHidGuardSetting": 2,
        "DefaultWebBluetoothGuardSetting": 2,
        "DefaultFileSystemReadGuardSetting": 2,
        "DefaultFileSystemWriteGuardSetting": 2,
        // No calls home.
        "MetricsReportingEnabled": false,
        "SearchSuggestEnabled": false,
        "SpellCheckServiceEnabled": false,
        "TranslateEnabled": false,
        "NetworkPredictionOptions": 2,
        "BackgroundModeEnabled": false,
        "HardwareAccelerationModeEnabled": false,
        "PromotionsEnabled": false,
        // No warning bar about the stick's own command-line flags
        // (`--host-resolver-rules`): the person cannot change them, and the
        // sign-in page's browser showed "You are using an unsupported
        // command-line flag" above the network's page.
        "CommandLineFlagSecurityWarningsEnabled": false,
        // No game on the "no internet" page: the demo image, which has no
        // network, showed "Press space to play" (bench-boot's screendump).
        "AllowDinosaurEasterEgg": false,
    });
    match policy {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// [`locked_down`] with `more` on top.
fn locked_down_and(more: Value) -> Value {
    let mut policy = locked_down();
    if let Value::Object(more) = more {
        policy.extend(more);
    }
    Value::Object(policy)
}

/// The policy JSON; `ca_der` are the trusted CAs as DER.
pub fn render(session: &SessionPolicy, ca_der: &[Vec<u8>]) -> Value {
    use base64::Engine as _;
    let origins: Vec<String> = session.origins.iter().map(|o| origin_pattern(o)).collect();
    let mut allow = origins.clone();
    // The kiosk's own screens (connecting, errors) are drawn into about:blank.
    allow.push("about:blank".into());
    let cas: Vec<String> = ca_der
        .iter()
        .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
        .collect();
    locked_down_and(json!({
        "URLBlocklist": ["*"],
        "URLAllowlist": allow,
        // Camera and microphone: granted without a prompt on the conference
        // origins, never anywhere else.
        "VideoCaptureAllowedUrls": origins,
        "AudioCaptureAllowedUrls": origins,
        "AutoplayAllowed": true,
        // WebRTC offers only the address of the default route, which for the
        // conference account is the tunnel's (its own routing table): the page
        // never learns the PC's LAN address.
        "WebRtcIPHandling": "default_public_and_private_interfaces",
        // Trust: the configured CAs, not the platform's store.
        "CACertificates": cas,
        "CAPlatformIntegrationEnabled": false,
        // No windows of its own.
        "IncognitoModeAvailability": 1,
        "DefaultPopupsSetting": 2,
        "BookmarkBarEnabled": false,
        "EnableMediaRouter": false,
        "ExternalProtocolDialogShowAlwaysOpenCheckbox": false,
        "AutoLaunchProtocolsFromOrigins": [],
        // No calls home (they could not leave the tunnel anyway).
        "SafeBrowsingProtectionLevel": 0,
        "AlternateErrorPagesEnabled": false,
        "UrlKeyedAnonymizedDataCollectionEnabled": false,
    }))
}

/// The portal browser's policy: the network's sign-in page may be anywhere on
/// the web, so no URL allowlist; but nothing of the browser's own ways out,
/// nothing remembered, no camera, microphone or other device, and no
/// click-through on a certificate error ([`locked_down`]). Its trust is
/// Chromium's own root store: the conference's CAs are not the web's.
pub fn render_portal() -> Value {
    locked_down_and(json!({
        "URLBlocklist": ["file://*", "chrome://*", "chrome-untrusted://*", "devtools://*",
                          "view-source:*", "javascript:*", "data:*", "filesystem:*"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SessionPolicy {
        SessionPolicy {
            url: "https://conf.test/room".into(),
            origins: vec!["https://conf.test".into(), "https://10.99.0.10:8443".into()],
            fake_capture: false,
            test_virtual_camera: false,
            test_hostile_session: false,
            keyboard: None,
            ended_url: None,
        }
    }

    #[test]
    fn the_portal_browser_loads_the_web_but_keeps_nothing_and_reaches_no_device() {
        let policy = render_portal();
        assert!(policy.get("URLAllowlist").is_none());
        assert!(policy.get("CACertificates").is_none());
        for (key, want) in [
            ("VideoCaptureAllowed", json!(false)),
            ("AudioCaptureAllowed", json!(false)),
            ("SSLErrorOverrideAllowed", json!(false)),
            ("DownloadRestrictions", json!(3)),
            ("DeveloperToolsAvailability", json!(2)),
            ("PasswordManagerEnabled", json!(false)),
        ] {
            assert_eq!(policy[key], want, "{key}");
        }
        let blocked = policy["URLBlocklist"].as_array().expect("a list");
        assert!(blocked.contains(&json!("file://*")));
        assert!(blocked.contains(&json!("chrome://*")));
    }

    #[test]
    fn patterns_match_one_origin() {
        let cases = [
            ("https://conf.test", "https://.conf.test"),
            ("https://conf.test:8443", "https://.conf.test:8443"),
            ("https://10.99.0.10:8443", "https://10.99.0.10:8443"),
        ];
        for (origin, want) in cases {
            assert_eq!(origin_pattern(origin), want);
        }
    }

    #[test]
    fn only_the_conference_loads_and_has_the_camera() {
        let policy = render(&session(), &[vec![0x30, 0x82]]);
        assert_eq!(policy["URLBlocklist"], json!(["*"]));
        assert_eq!(
            policy["URLAllowlist"],
            json!([
                "https://.conf.test",
                "https://10.99.0.10:8443",
                "about:blank"
            ])
        );
        for key in ["VideoCaptureAllowedUrls", "AudioCaptureAllowedUrls"] {
            assert_eq!(
                policy[key],
                json!(["https://.conf.test", "https://10.99.0.10:8443"]),
                "{key}"
            );
        }
        assert_eq!(policy["CACertificates"], json!(["MII="]));
        let cases = [
            ("VideoCaptureAllowed", json!(false)),
            ("AudioCaptureAllowed", json!(false)),
            ("DeveloperToolsAvailability", json!(2)),
            ("DownloadRestrictions", json!(3)),
            ("PrintingEnabled", json!(false)),
            ("ExtensionInstallBlocklist", json!(["*"])),
            ("PasswordManagerEnabled", json!(false)),
            ("SSLErrorOverrideAllowed", json!(false)),
            ("CAPlatformIntegrationEnabled", json!(false)),
            ("IncognitoModeAvailability", json!(1)),
            ("DefaultPopupsSetting", json!(2)),
            ("AllowFileSelectionDialogs", json!(false)),
            ("AllowDinosaurEasterEgg", json!(false)),
            (
                "WebRtcIPHandling",
                json!("default_public_and_private_interfaces"),
            ),
        ];
        for (key, want) in cases {
            assert_eq!(policy[key], want, "{key}");
        }
    }
}
