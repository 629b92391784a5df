//! `kiosk overlay LANG`: the stick's own surface on the compositor's overlay layer
//! (wlr-layer-shell), above every window including a full-screen browser. It reads
//! the capture state from its input, one line per change (`camera=1
//! microphone=0`, written by the kiosk from the kernel's view), paints the
//! indicator, and answers `shown camera=1 microphone=0` once the compositor has
//! put that frame on screen (the frame callback). `screen NAME` puts one of the
//! stick's screens over everything (`screen none` takes it away); the answer is
//! `shown screen NAME`. `question NAME` puts a question above even that and takes
//! the keyboard from the browser until Enter or Esc answers it: `answer NAME
//! yes|no`.
//!
//! It runs as the screen account on the compositor's own socket, which the browser
//! cannot reach: the browser's socket carries a security context, and labwc
//! offers no layer-shell there.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use stick_manifest::Language;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_keyboard, wl_output, wl_region, wl_registry, wl_seat,
    wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::WEnum;
use wayland_client::{delegate_noop, Connection, Dispatch, EventQueue, QueueHandle};
use wayland_protocols_wlr::layer_shell::v1::client::{zwlr_layer_shell_v1, zwlr_layer_surface_v1};

use crate::capture::CaptureState;
use crate::network::wifi::choice::Choice;
use crate::overlay::full_screen;
use crate::overlay::indicator;
use crate::overlay::paint::{load_font, FONT_PATH};
use crate::overlay::screens::{
    answer_line, entered_line, parse_choices_line, parse_question_line, parse_screen_line,
    screen_line, StickScreen,
};
use crate::overlay::text_field::{wipe, FieldStep, KeyDecoder, KeyInput, TextField};

/// The kiosk's subcommand that runs it.
pub const SUBCOMMAND: &str = "overlay";
/// The layer surfaces' namespaces (what the compositor's logs call them).
const NAMESPACE: &str = "secure-stick-indicator";
const SCREEN_NAMESPACE: &str = "secure-stick-screen";

/// `kiosk overlay LANG`.
pub fn run(language: Option<String>) -> ExitCode {
    let Some(language) = language.as_deref().and_then(Language::from_code) else {
        eprintln!("usage: kiosk overlay de|en (started by the kiosk, input: capture state lines)");
        return ExitCode::from(2);
    };
    match serve(language) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kiosk overlay: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Which of the overlay's surfaces an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Indicator = 0,
    /// The stick's screen in place of the conference.
    Screen = 1,
    /// A question over everything, with the keyboard (`confirm-leave`).
    Question = 2,
}

/// Linux key codes the questions answer to (`wl_keyboard` sends them as they are).
const KEY_ESC: u32 = 1;
const KEY_ENTER: u32 = 28;
const KEY_KPENTER: u32 = 96;
/// The arrow keys that move a list's mark.
const KEY_UP: u32 = 103;
const KEY_DOWN: u32 = 108;

/// What the compositor told the overlay.
#[derive(Debug, Default)]
struct Overlay {
    configured: bool,
    closed: bool,
    /// The size the compositor gave the full-screen surface of each [`Role`]
    /// asked for last.
    sizes: [Option<(u32, u32)>; 3],
    /// The newest frame the compositor put on screen, per [`Role`].
    frame_shown: [u64; 3],
    keyboard: Option<wl_keyboard::WlKeyboard>,
    /// The compositor's keymap and modifiers: what a key means in a text field.
    decoder: KeyDecoder,
    /// Keys pressed while an overlay surface had the keyboard, oldest first,
    /// with what they meant then.
    pressed: Vec<(u32, KeyInput)>,
    /// The output's current mode, in pixels (sizes the indicator).
    output_size: Option<(i32, i32)>,
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for Overlay {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<zwlr_layer_surface_v1::ZwlrLayerSurfaceV1, Role> for Overlay {
    fn event(
        state: &mut Self,
        surface: &zwlr_layer_surface_v1::ZwlrLayerSurfaceV1,
        event: zwlr_layer_surface_v1::Event,
        role: &Role,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_layer_surface_v1::Event::Configure {
                serial,
                width,
                height,
            } => {
                surface.ack_configure(serial);
                match role {
                    Role::Indicator => state.configured = true,
                    Role::Screen | Role::Question => {
                        state.sizes[*role as usize] = Some((width, height));
                    }
                }
            }
            zwlr_layer_surface_v1::Event::Closed if *role == Role::Indicator => {
                state.closed = true;
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, (Role, u64)> for Overlay {
    fn event(
        state: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        (role, frame): &(Role, u64),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            let shown = &mut state.frame_shown[*role as usize];
            *shown = (*shown).max(*frame);
        }
    }
}

impl Dispatch<wl_output::WlOutput, ()> for Overlay {
    fn event(
        state: &mut Self,
        _: &wl_output::WlOutput,
        event: wl_output::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_output::Event::Mode {
            flags: WEnum::Value(flags),
            width,
            height,
            ..
        } = event
        {
            if flags.contains(wl_output::Mode::Current) {
                state.output_size = Some((width, height));
            }
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for Overlay {
    fn event(
        state: &mut Self,
        seat: &wl_seat::WlSeat,
        event: wl_seat::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_seat::Event::Capabilities {
            capabilities: WEnum::Value(capabilities),
        } = event
        {
            if capabilities.contains(wl_seat::Capability::Keyboard) && state.keyboard.is_none() {
                state.keyboard = Some(seat.get_keyboard(qh, ()));
            }
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for Overlay {
    fn event(
        state: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_keyboard::Event::Keymap {
                format: WEnum::Value(wl_keyboard::KeymapFormat::XkbV1),
                fd,
                size,
            } => {
                // Read at offset 0: the compositor may share one descriptor.
                let file = std::fs::File::from(fd);
                let mut text = vec![0; size as usize];
                let read = file
                    .read_exact_at(&mut text, 0)
                    .map_err(|e| e.to_string())
                    .and_then(|()| state.decoder.set_keymap(&text));
                if let Err(err) = read {
                    eprintln!("kiosk overlay: no keymap, text fields take no characters: {err}");
                }
            }
            wl_keyboard::Event::Modifiers {
                mods_depressed,
                mods_latched,
                mods_locked,
                group,
                ..
            } => state
                .decoder
                .set_modifiers(mods_depressed, mods_latched, mods_locked, group),
            wl_keyboard::Event::Key {
                key,
                state: WEnum::Value(wl_keyboard::KeyState::Pressed),
                ..
            } => {
                let input = state.decoder.decode(key);
                state.pressed.push((key, input));
            }
            _ => {}
        }
    }
}

delegate_noop!(Overlay: ignore wl_compositor::WlCompositor);
delegate_noop!(Overlay: ignore wl_shm::WlShm);
delegate_noop!(Overlay: ignore wl_shm_pool::WlShmPool);
delegate_noop!(Overlay: ignore wl_buffer::WlBuffer);
delegate_noop!(Overlay: ignore wl_surface::WlSurface);
delegate_noop!(Overlay: ignore wl_region::WlRegion);
delegate_noop!(Overlay: ignore zwlr_layer_shell_v1::ZwlrLayerShellV1);

/// The surface and two buffers in one shared-memory file, used in turn.
struct Surface {
    surface: wl_surface::WlSurface,
    file: std::fs::File,
    buffers: [wl_buffer::WlBuffer; 2],
    /// Frames shown so far; also the number of the last one.
    frames: u64,
    /// The indicator's size in pixels ([`indicator::WIDTH`] x [`indicator::HEIGHT`]
    /// times the scale).
    width: u32,
    height: u32,
}

impl Surface {
    fn frame_bytes(width: u32, height: u32) -> usize {
        (width * height * 4) as usize
    }

    /// Asks for an overlay-layer surface at the top right that takes no input,
    /// `scale` times the indicator's size.
    fn create(
        queue: &mut EventQueue<Overlay>,
        state: &mut Overlay,
        globals: &Globals,
        scale: u32,
    ) -> Result<Surface> {
        let (width, height) = (indicator::WIDTH * scale, indicator::HEIGHT * scale);
        let frame_bytes = Surface::frame_bytes(width, height);
        let qh = queue.handle();
        let surface = globals.compositor.create_surface(&qh, ());
        let layer = globals.layer_shell.get_layer_surface(
            &surface,
            None,
            zwlr_layer_shell_v1::Layer::Overlay,
            NAMESPACE.into(),
            &qh,
            Role::Indicator,
        );
        layer.set_size(width, height);
        layer.set_anchor(zwlr_layer_surface_v1::Anchor::Top | zwlr_layer_surface_v1::Anchor::Right);
        let margin = indicator::MARGIN * scale as i32;
        layer.set_margin(margin, margin, 0, 0);
        layer.set_keyboard_interactivity(zwlr_layer_surface_v1::KeyboardInteractivity::None);
        // An empty input region: clicks go through to the conference.
        let region = globals.compositor.create_region(&qh, ());
        surface.set_input_region(Some(&region));
        region.destroy();
        surface.commit();
        while !state.configured {
            if state.closed {
                bail!("the compositor closed the overlay surface before showing it");
            }
            queue
                .blocking_dispatch(state)
                .context("lost the compositor while waiting for the overlay's configure")?;
        }
        let file = shared_memory(2 * frame_bytes)?;
        let pool = globals
            .shm
            .create_pool(file.as_fd(), (2 * frame_bytes) as i32, &qh, ());
        let buffer = |index: usize| {
            pool.create_buffer(
                (index * frame_bytes) as i32,
                width as i32,
                height as i32,
                (width * 4) as i32,
                wl_shm::Format::Argb8888,
                &qh,
                (),
            )
        };
        let buffers = [buffer(0), buffer(1)];
        pool.destroy();
        Ok(Surface {
            surface,
            file,
            buffers,
            frames: 0,
            width,
            height,
        })
    }

    /// Paints `pixels` into the next buffer and shows it; returns the frame's
    /// number, which its callback reports once it is on screen.
    fn show(&mut self, pixels: &[u8], qh: &QueueHandle<Overlay>) -> Result<u64> {
        self.frames += 1;
        let index = (self.frames % 2) as usize;
        self.file
            .write_all_at(
                pixels,
                (index * Surface::frame_bytes(self.width, self.height)) as u64,
            )
            .context("cannot paint into the overlay's shared memory")?;
        self.surface.attach(Some(&self.buffers[index]), 0, 0);
        self.surface
            .damage_buffer(0, 0, self.width as i32, self.height as i32);
        self.surface.frame(qh, (Role::Indicator, self.frames));
        self.surface.commit();
        Ok(self.frames)
    }
}

/// One of the stick's screens over the whole output, asked for and, once the
/// compositor gave it a size, painted.
struct FullScreen {
    screen: StickScreen,
    /// [`Role::Screen`] or [`Role::Question`].
    role: Role,
    surface: wl_surface::WlSurface,
    layer: zwlr_layer_surface_v1::ZwlrLayerSurfaceV1,
    buffer: Option<(wl_buffer::WlBuffer, std::fs::File)>,
    /// The painted frame, until it was shown and reported.
    frame: Option<u64>,
    /// The dots of its text field, for a screen that takes text.
    field: Option<usize>,
    /// Its list's rows, or the network it is about (the kiosk's `choices`).
    rows: Vec<Choice>,
    /// The marked row of a list.
    marked: usize,
    /// Painted, but what it shows changed (the field, the list): paint again.
    stale: bool,
}

/// What painting needs: the globals, the queue, the language and the font.
type PaintWith<'a> = (
    &'a Globals,
    &'a QueueHandle<Overlay>,
    Language,
    Option<&'a ab_glyph::FontVec>,
);

impl FullScreen {
    /// Asks for an overlay-layer surface over the whole output. A screen takes no
    /// input (the conference is gone while it shows) unless it
    /// [takes keys](StickScreen::takes_keys); a question takes the keyboard from
    /// everything else until it is answered.
    fn request(
        screen: StickScreen,
        role: Role,
        globals: &Globals,
        qh: &QueueHandle<Overlay>,
        output_height: u32,
    ) -> FullScreen {
        use zwlr_layer_surface_v1::Anchor;
        let surface = globals.compositor.create_surface(qh, ());
        let layer = globals.layer_shell.get_layer_surface(
            &surface,
            None,
            zwlr_layer_shell_v1::Layer::Overlay,
            SCREEN_NAMESPACE.into(),
            qh,
            role,
        );
        if screen.is_strip() {
            // Over the top only, and windows keep out from under it.
            let height = full_screen::strip_height(output_height);
            layer.set_anchor(Anchor::Top | Anchor::Left | Anchor::Right);
            layer.set_size(0, height);
            layer.set_exclusive_zone(height as i32);
        } else {
            layer.set_anchor(Anchor::Top | Anchor::Bottom | Anchor::Left | Anchor::Right);
            layer.set_size(0, 0);
            layer.set_exclusive_zone(-1);
        }
        layer.set_keyboard_interactivity(if role == Role::Question || screen.takes_keys() {
            zwlr_layer_surface_v1::KeyboardInteractivity::Exclusive
        } else {
            zwlr_layer_surface_v1::KeyboardInteractivity::None
        });
        surface.commit();
        FullScreen {
            screen,
            role,
            surface,
            layer,
            buffer: None,
            frame: None,
            field: screen.takes_text().then_some(0),
            rows: Vec::new(),
            marked: 0,
            stale: false,
        }
    }

    /// New rows from the kiosk; the mark stays on the network it was on.
    fn show_rows(&mut self, rows: &[Choice]) {
        if self.rows == rows {
            return;
        }
        let marked_name = self.rows.get(self.marked).map(|r| r.name.clone());
        self.marked = marked_name
            .and_then(|name| rows.iter().position(|r| r.name == name))
            .unwrap_or(0);
        self.rows = rows.to_vec();
        self.stale = true;
    }

    /// The arrow keys move the mark within the list.
    fn move_mark(&mut self, down: bool) {
        let last = self.rows.len().saturating_sub(1);
        let next = if down {
            (self.marked + 1).min(last)
        } else {
            self.marked.saturating_sub(1)
        };
        if next != self.marked {
            self.marked = next;
            self.stale = true;
        }
    }

    /// The field now holds `dots` characters: paint it so.
    fn show_field(&mut self, dots: usize) {
        if self.field.is_some() && self.field != Some(dots) {
            self.field = Some(dots);
            self.stale = true;
        }
    }

    /// Takes `old` away and asks for `wanted` in `role`, if any.
    fn replace(
        old: Option<FullScreen>,
        wanted: Option<StickScreen>,
        role: Role,
        state: &mut Overlay,
        (globals, qh): (&Globals, &QueueHandle<Overlay>),
    ) -> Option<FullScreen> {
        if let Some(old) = old {
            old.destroy();
        }
        state.sizes[role as usize] = None;
        let output_height = state.output_size.map_or(768, |(_, h)| h.max(0) as u32);
        wanted.map(|wanted| FullScreen::request(wanted, role, globals, qh, output_height))
    }

    /// Paints the screen once the compositor has sized it; returns the frame.
    fn paint_when_configured(
        &mut self,
        state: &Overlay,
        (globals, qh, language, font): PaintWith<'_>,
        frames: &mut u64,
    ) -> Result<Option<u64>> {
        if self.buffer.is_some() && !self.stale {
            return Ok(None);
        }
        // The kiosk hears of a screen's first frame, not of each keystroke's.
        let first = self.buffer.is_none();
        let size = state.sizes[self.role as usize];
        let Some((width, height)) = size.filter(|&(w, h)| w > 0 && h > 0) else {
            return Ok(None);
        };
        let extras = full_screen::Extras {
            field: self.field,
            rows: &self.rows,
            marked: self.marked,
        };
        let bytes =
            full_screen::paint(self.screen, extras, language, font, width, height).to_bytes();
        let file = shared_memory(bytes.len())?;
        file.write_all_at(&bytes, 0)
            .context("cannot paint into the screen's shared memory")?;
        let pool = globals
            .shm
            .create_pool(file.as_fd(), bytes.len() as i32, qh, ());
        let buffer = pool.create_buffer(
            0,
            width as i32,
            height as i32,
            (width * 4) as i32,
            wl_shm::Format::Argb8888,
            qh,
            (),
        );
        pool.destroy();
        self.surface.attach(Some(&buffer), 0, 0);
        self.surface
            .damage_buffer(0, 0, width as i32, height as i32);
        *frames += 1;
        self.surface.frame(qh, (self.role, *frames));
        self.surface.commit();
        // The compositor has the new buffer: the old one can go.
        if let Some((old, _)) = self.buffer.replace((buffer, file)) {
            old.destroy();
        }
        self.stale = false;
        Ok(first.then_some(*frames))
    }

    fn destroy(self) {
        self.layer.destroy();
        self.surface.destroy();
        if let Some((buffer, _)) = self.buffer {
            buffer.destroy();
        }
    }
}

/// The compositor's globals the overlay needs.
struct Globals {
    compositor: wl_compositor::WlCompositor,
    shm: wl_shm::WlShm,
    layer_shell: zwlr_layer_shell_v1::ZwlrLayerShellV1,
    /// Held so the compositor keeps sending the seat's events.
    _seat: Option<wl_seat::WlSeat>,
    /// The (first) output: its mode sizes the indicator.
    _output: Option<wl_output::WlOutput>,
}

/// An anonymous file of `size` bytes the compositor maps.
fn shared_memory(size: usize) -> Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(
        c"secure-stick-overlay",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .context("cannot create the overlay's shared memory")?;
    let file = std::fs::File::from(fd);
    file.set_len(size as u64)
        .context("cannot size the overlay's shared memory")?;
    Ok(file)
}

/// Connects to the compositor of `WAYLAND_DISPLAY` and binds what the overlay needs.
fn connect() -> Result<(Connection, EventQueue<Overlay>, Globals)> {
    let connection = Connection::connect_to_env().context("cannot reach the compositor")?;
    let (globals, queue) = registry_queue_init::<Overlay>(&connection)
        .context("cannot list the compositor's globals")?;
    let qh = queue.handle();
    let globals = Globals {
        compositor: globals.bind(&qh, 4..=6, ()).context("no wl_compositor")?,
        shm: globals.bind(&qh, 1..=1, ()).context("no wl_shm")?,
        layer_shell: globals
            .bind(&qh, 1..=4, ())
            .context("the compositor offers no wlr-layer-shell on this socket")?,
        // Without a seat there is no keyboard, and a question cannot be answered.
        _seat: globals.bind(&qh, 1..=7, ()).ok(),
        // Without an output the indicator keeps its smallest size.
        _output: globals.bind(&qh, 1..=4, ()).ok(),
    };
    Ok((connection, queue, globals))
}

/// One answer line to the kiosk.
fn tell_kiosk(stdout: &mut std::io::Stdout, line: &str) -> Result<()> {
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("the kiosk stopped reading the overlay")
}

fn serve(language: Language) -> Result<()> {
    let font = match load_font(FONT_PATH) {
        Ok(font) => Some(font),
        Err(err) => {
            eprintln!("kiosk overlay: no font, boxes without words: {err}");
            None
        }
    };
    let (connection, mut queue, globals) = connect()?;
    let qh = queue.handle();
    let mut state = Overlay::default();
    // The output's mode arrives with the first round trip.
    queue
        .roundtrip(&mut state)
        .context("lost the compositor while asking for the output's size")?;
    let scale = state
        .output_size
        .map_or(1, |(_, height)| indicator::scale_for(height.max(0) as u32));
    let mut surface = Surface::create(&mut queue, &mut state, &globals, scale)?;
    let mut shown = CaptureState::default();
    surface.show(
        &indicator::paint(shown, language, font.as_ref(), scale).to_bytes(),
        &qh,
    )?;
    // The frame the kiosk waits to hear about, and what it shows.
    let mut waiting: Option<(u64, CaptureState)> = None;
    let mut full = FullScreens::default();
    let mut input = LineInput::default();
    let mut stdout = std::io::stdout();
    loop {
        queue
            .dispatch_pending(&mut state)
            .context("lost the compositor")?;
        if state.closed {
            bail!("the compositor closed the overlay surface");
        }
        full.answer(&mut state, &mut stdout)?;
        full.update(
            &state,
            (&globals, &qh, language, font.as_ref()),
            &mut stdout,
        )?;
        if let Some((frame, drawn)) = waiting {
            if state.frame_shown[Role::Indicator as usize] >= frame {
                tell_kiosk(&mut stdout, &format!("shown {}", drawn.to_line()))?;
                waiting = None;
            }
        }
        connection
            .flush()
            .context("cannot write to the compositor")?;
        let Some(guard) = queue.prepare_read() else {
            continue;
        };
        let stdin = std::io::stdin();
        let (compositor_ready, kiosk_ready) = wait_readable(guard.connection_fd(), stdin.as_fd())?;
        if compositor_ready {
            guard.read().context("lost the compositor")?;
        } else {
            drop(guard);
        }
        if !kiosk_ready {
            continue;
        }
        let Some(lines) = input.read(stdin.as_fd())? else {
            // The kiosk ended the session.
            return Ok(());
        };
        for line in &lines {
            full.follow(line, &mut state, (&globals, &qh), &mut stdout)?;
        }
        // Only the newest state matters.
        let Some(next) = lines
            .iter()
            .rev()
            .find_map(|line| CaptureState::parse_line(line))
        else {
            continue;
        };
        if next != shown {
            shown = next;
            let frame = surface.show(
                &indicator::paint(shown, language, font.as_ref(), scale).to_bytes(),
                &qh,
            )?;
            waiting = Some((frame, shown));
        }
    }
}

/// The full-screen surfaces: the stick's screen, and a question above it.
#[derive(Default)]
struct FullScreens {
    screen: Option<FullScreen>,
    question: Option<FullScreen>,
    frames: u64,
    /// The text field of a screen that [takes text](StickScreen::takes_text).
    field: TextField,
    /// The kiosk's latest rows (`choices`), for the screen now and the next.
    rows: Vec<Choice>,
}

/// What a key answers to a question: Enter yes, Esc no.
fn answer_key(key: u32) -> Option<bool> {
    match key {
        KEY_ENTER | KEY_KPENTER => Some(true),
        KEY_ESC => Some(false),
        _ => None,
    }
}

impl FullScreens {
    /// Follows one of the kiosk's lines: `screen NAME|none` changes the screen
    /// (a question stays above it: it is asked again on top); `question NAME`
    /// asks.
    fn follow(
        &mut self,
        line: &str,
        state: &mut Overlay,
        with: (&Globals, &QueueHandle<Overlay>),
        stdout: &mut std::io::Stdout,
    ) -> Result<()> {
        if let Some(wanted) = parse_screen_line(line) {
            // A new screen starts with an empty field.
            self.field.wipe();
            self.screen =
                FullScreen::replace(self.screen.take(), wanted, Role::Screen, state, with);
            if let Some(screen) = self.screen.as_mut() {
                screen.show_rows(&self.rows);
            }
            if let Some(question) = self.question.take() {
                let asked = Some(question.screen);
                self.question =
                    FullScreen::replace(Some(question), asked, Role::Question, state, with);
            }
            if wanted.is_none() {
                tell_kiosk(stdout, &format!("shown {}", screen_line(None)))?;
            }
        } else if let Some(question) = parse_question_line(line) {
            let old = self.question.take();
            self.question = FullScreen::replace(old, Some(question), Role::Question, state, with);
        } else if let Some(rows) = parse_choices_line(line) {
            if let Some(screen) = self.screen.as_mut() {
                screen.show_rows(&rows);
            }
            self.rows = rows;
        }
        Ok(())
    }

    /// The keys pressed since the last look: the first Enter or Esc answers the
    /// question, which goes away; without a question, Enter answers a screen that
    /// [takes keys](StickScreen::takes_keys), which stays until the kiosk
    /// replaces it.
    fn answer(&mut self, state: &mut Overlay, stdout: &mut std::io::Stdout) -> Result<()> {
        let pressed = std::mem::take(&mut state.pressed);
        if let Some(question) = self.question.take() {
            let Some(yes) = pressed.into_iter().find_map(|(key, _)| answer_key(key)) else {
                self.question = Some(question);
                return Ok(());
            };
            let asked = question.screen;
            question.destroy();
            state.sizes[Role::Question as usize] = None;
            return tell_kiosk(stdout, &answer_line(asked, yes));
        }
        let Some(full) = self.screen.as_mut() else {
            return Ok(());
        };
        if full.screen.takes_choice() {
            for (key, _) in pressed {
                match key {
                    KEY_UP | KEY_DOWN => full.move_mark(key == KEY_DOWN),
                    KEY_ENTER | KEY_KPENTER => {
                        if let Some(row) = full.rows.get(full.marked) {
                            tell_kiosk(stdout, &entered_line(full.screen, &row.name))?;
                        }
                    }
                    _ => {}
                }
            }
        } else if full.screen.takes_text() {
            for (_, input) in pressed {
                if input == KeyInput::Escape && self.field.is_empty() && full.screen.esc_goes_back()
                {
                    tell_kiosk(stdout, &answer_line(full.screen, false))?;
                    continue;
                }
                match self.field.apply(input) {
                    FieldStep::Changed(dots) => full.show_field(dots),
                    FieldStep::Submitted(text) => {
                        let line = entered_line(full.screen, &text);
                        wipe(text);
                        full.show_field(0);
                        tell_kiosk(stdout, &line)?;
                        wipe(line);
                    }
                    FieldStep::Unchanged => {}
                }
            }
        } else if full.screen.takes_keys()
            && pressed
                .into_iter()
                .any(|(key, _)| answer_key(key) == Some(true))
        {
            tell_kiosk(stdout, &answer_line(full.screen, true))?;
        }
        Ok(())
    }

    /// Paints what the compositor has sized; tells the kiosk what it has shown.
    fn update(
        &mut self,
        state: &Overlay,
        paint: PaintWith<'_>,
        stdout: &mut std::io::Stdout,
    ) -> Result<()> {
        for full in [&mut self.screen, &mut self.question].into_iter().flatten() {
            if let Some(frame) = full.paint_when_configured(state, paint, &mut self.frames)? {
                full.frame = Some(frame);
            }
            if full
                .frame
                .is_some_and(|f| state.frame_shown[full.role as usize] >= f)
            {
                full.frame = None;
                tell_kiosk(stdout, &format!("shown {}", screen_line(Some(full.screen))))?;
            }
        }
        Ok(())
    }
}

/// Waits until the compositor's or the kiosk's descriptor can be read.
fn wait_readable(
    compositor: std::os::fd::BorrowedFd<'_>,
    kiosk: std::os::fd::BorrowedFd<'_>,
) -> Result<(bool, bool)> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [
        PollFd::new(compositor, PollFlags::POLLIN),
        PollFd::new(kiosk, PollFlags::POLLIN),
    ];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(err) => bail!("cannot wait for the compositor or the kiosk: {err}"),
    }
    let ready = |fd: &PollFd| {
        fd.revents().is_some_and(|r| {
            r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        })
    };
    Ok((ready(&fds[0]), ready(&fds[1])))
}

/// Whole lines from a descriptor that `poll` said is readable, without blocking on
/// a half line (a buffered reader would hide a second line from `poll`).
#[derive(Debug, Default)]
struct LineInput {
    pending: Vec<u8>,
}

impl LineInput {
    /// The complete lines read now; `None` at the end of the input.
    fn read(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> Result<Option<Vec<String>>> {
        let mut buffer = [0u8; 4096];
        let count = match nix::unistd::read(fd.as_raw_fd(), &mut buffer) {
            Ok(count) => count,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {
                return Ok(Some(Vec::new()))
            }
            Err(err) => bail!("cannot read from the kiosk: {err}"),
        };
        if count == 0 {
            return Ok(None);
        }
        Ok(Some(self.push(&buffer[..count])))
    }

    /// Adds bytes; returns the lines they complete.
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole() {
        let mut input = LineInput::default();
        assert_eq!(input.push(b"camera=1 micro"), Vec::<String>::new());
        assert_eq!(
            input.push(b"phone=0\ncamera=0 microphone=0\ncam"),
            ["camera=1 microphone=0", "camera=0 microphone=0"]
        );
        assert_eq!(
            input.push(b"era=1 microphone=1\n"),
            ["camera=1 microphone=1"]
        );
    }
}
