"""What Gradio leaves unsaid to a screen reader, said once for every page: a live status that
announces each action's result, names for the controls Gradio names badly, the keys Gradio
leaves dead (arrows in a radio group and a tab list, Tab out of an open dropdown, Enter on a
dropdown's choice), and its own "Complete"
announcement, which it read aloud as the untranslated key "common.complete".

Used by every demo (:func:`live_status`) and by :func:`tunesmith.ui.launch.launch` and the
suite's app (:func:`page_options`). Gradio is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: The class of a live status's block (a ``gr.Markdown``); the page script makes its text a
#: polite live region and the page's CSS hides it from the eye (the result itself is shown).
LIVE_CLASS = "tunesmith-live"

#: Gradio's English texts lack ``common.complete``, the key it announces after each action, so
#: its announcer said "common dot complete". Given here, every locale falls back to it.
MISSING_TEXTS = {"common.complete": "Complete"}

#: Run once on page load: names and roles Gradio's own arguments cannot set, kept as Gradio
#: redraws (a tab or an accordion renders its controls when first opened).
PAGE_SCRIPT = """
() => {
  let next = 0;
  const set = (el, name, value) => {
    if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  };
  const fix = () => {
    // The live status: on the text itself, not on its box, whose progress timer
    // ("queue: 1/1 | 1.8s") would be read out too.
    document.querySelectorAll('.block.LIVE [data-testid="markdown"]').forEach((el) => {
      set(el, 'role', 'status');
      set(el, 'aria-live', 'polite');
      set(el, 'aria-atomic', 'true');
    });
    // Decorative icons read as unnamed images: dropdown arrows, the icons beside labels and
    // in upload boxes and in named buttons (a table's "Fullscreen"), an accordion's arrow
    // (its name was "Why this answer \u25bc").
    document.querySelectorAll(
      'svg.dropdown-arrow, [data-testid="block-label"] svg, [data-testid="upload-icon"] svg,'
      + ' button.label-wrap > .icon, button[aria-label]:not([aria-label=""]) svg'
    ).forEach((el) => set(el, 'aria-hidden', 'true'));
    // An accordion said nothing of being open or closed.
    document.querySelectorAll('button.label-wrap').forEach((el) => {
      set(el, 'aria-expanded', el.classList.contains('open') ? 'true' : 'false');
    });
    // A radio group was an unnamed "group": its label is a span beside it, not its legend.
    document.querySelectorAll('fieldset.block').forEach((el) => {
      const label = el.querySelector(':scope > [data-testid="block-info"]');
      if (!label || !el.querySelector('input[type="radio"]')) return;
      if (!label.id) label.id = 'tunesmith-group-' + (next += 1);
      set(el, 'role', 'radiogroup');
      set(el, 'aria-labelledby', label.id);
      // One Tab stop per group, as a radio group has: Gradio names each radio apart
      // ("radio-1", "radio-2"), so each was a stop of its own and arrows did nothing.
      const radios = [...el.querySelectorAll('input[type="radio"]')];
      const stop = radios.find((r) => r.checked) || radios.find((r) => !r.disabled);
      radios.forEach((r) => set(r, 'tabindex', r === stop ? '0' : '-1'));
    });
    // A dropdown's open list scrolls, so Chromium made it a Tab stop of its own; Tab from
    // the box landed on it, the box closed it, and focus fell to the page's start.
    document.querySelectorAll('ul[role="listbox"]').forEach((el) => set(el, 'tabindex', '-1'));
    // A tab list was one Tab stop per tab (four to cross the suite's, then two more inside the
    // finance tab) and its arrows did nothing; its panels named no tab. As a tab list has it:
    // the selected tab is the one stop, arrows move (see below), each panel is its tab's.
    document.querySelectorAll('[role="tablist"]').forEach((list) => {
      const tabs = [...list.querySelectorAll('[role="tab"]')];
      const stop = tabs.find((t) => t.getAttribute('aria-selected') === 'true') || tabs[0];
      tabs.forEach((t) => set(t, 'tabindex', t === stop ? '0' : '-1'));
      // Gradio draws a panel when its tab is first opened: the one shown is the selected's.
      const panel = [...(list.closest('.tabs')?.children || [])].find(
        (el) => el.getAttribute('role') === 'tabpanel' && getComputedStyle(el).display !== 'none'
      );
      if (!stop || !panel) return;
      if (!stop.id) stop.id = 'tunesmith-tab-' + (next += 1);
      if (!panel.id) panel.id = stop.id + '-panel';
      set(stop, 'aria-controls', panel.id);
      set(panel, 'aria-labelledby', stop.id);
    });
    // Every upload button was "Click to upload or drop files", whatever it uploads.
    document.querySelectorAll('button.upload-container').forEach((el) => {
      const label = el.closest('.block')?.querySelector('[data-testid="block-label"]');
      const name = label ? label.textContent.trim() : '';
      if (name) set(el, 'aria-label', 'Upload ' + name);
    });
  };
  // Arrows move through a radio group and choose, as in any radio group (see above).
  document.addEventListener('keydown', (event) => {
    const at = event.target;
    if (at.matches?.('[role="combobox"]') && event.key === 'Tab') {
      const list = document.getElementById(at.getAttribute('aria-controls') || '');
      if (list) set(list, 'tabindex', '-1');  // before the browser moves focus
      return;
    }
    const step = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1}[event.key];
    const group = at.matches?.('input[type="radio"]') && at.closest('[role="radiogroup"]');
    if (!step || !group || event.altKey || event.ctrlKey || event.metaKey) return;
    const radios = [...group.querySelectorAll('input[type="radio"]')].filter((r) => !r.disabled);
    const next = radios[(radios.indexOf(at) + step + radios.length) % radios.length];
    event.preventDefault();
    if (!next || next === at) return;
    radios.forEach((r) => set(r, 'tabindex', r === next ? '0' : '-1'));
    next.focus();
    next.click();  // chosen as a click chooses it: Gradio's own handler runs
  }, true);
  // Arrows (and Home, End) move along a tab list and select, as a click selects.
  document.addEventListener('keydown', (event) => {
    const at = event.target;
    const list = at.matches?.('[role="tab"]') && at.closest('[role="tablist"]');
    if (!list || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const tabs = [...list.querySelectorAll('[role="tab"]')]
      .filter((t) => t.getAttribute('aria-disabled') !== 'true');
    const from = tabs.indexOf(at);
    const to = {
      ArrowRight: from + 1, ArrowLeft: from - 1, Home: 0, End: tabs.length - 1,
    }[event.key];
    if (to === undefined || from < 0) return;
    event.preventDefault();
    const tab = tabs[(to + tabs.length) % tabs.length];
    if (tab === at) return;
    tabs.forEach((t) => set(t, 'tabindex', t === tab ? '0' : '-1'));
    tab.focus();
    tab.click();
  }, true);
  // Enter on a dropdown's choice blurred its box (Gradio closes the list so): the focus fell
  // to the page, its ring gone and a screen reader's place lost. The box gets it back, closed.
  let refocusing = null;
  document.addEventListener('focus', (event) => {
    if (event.target !== refocusing) return;
    event.stopPropagation();  // Gradio's own focus handler would open the list again
  }, true);
  document.addEventListener('keydown', (event) => {
    const box = event.target;
    if (event.key !== 'Enter' || !box.matches?.('input[role="combobox"]')) return;
    const back = (blur) => {
      if (blur.relatedTarget) return;  // the focus went somewhere: left there
      setTimeout(() => {
        if (document.activeElement !== document.body || !box.isConnected) return;
        refocusing = box;
        box.focus();
        refocusing = null;
      });
    };
    box.addEventListener('blur', back, {once: true});
    setTimeout(() => box.removeEventListener('blur', back), 1000);
  }, true);
  let queued = false;
  const later = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fix(); });
  };
  fix();
  new MutationObserver(later).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['class'],
  });
}
""".replace("LIVE", LIVE_CLASS)

#: The focus ring's colour on the light and the dark theme: at least 5:1 against every
#: background of its theme (white to zinc-200; zinc-950 to zinc-700), where WCAG 1.4.11 asks
#: 3:1. Gradio's accent, orange #f97316, is 2.8:1 on white.
FOCUS_COLORS = {"light": "#1d4ed8", "dark": "#93c5fd"}

#: Every control the keyboard reaches, outlined where it is (WCAG 2.4.7). Gradio's own rings
#: were a pale blue glow on a text box (1.05:1 on white), none on a dropdown and the browser's
#: 1 px one on a button. ``:focus-visible``: a click on a button draws nothing new; a text box
#: shows it on a click too, as browsers choose, since typing goes there. The offset keeps the
#: ring on the page's background, off a primary button's orange. A button's transition of
#: "all" drew the ring fading in from its text's colour (white, on a primary button).
FOCUS_CSS = f"""
:root {{ --tunesmith-focus: {FOCUS_COLORS["light"]}; }}
.dark {{ --tunesmith-focus: {FOCUS_COLORS["dark"]}; }}
:focus-visible {{
  outline: 3px solid var(--tunesmith-focus) !important; outline-offset: 2px !important;
  transition-property: none !important;
}}
/* A tab list clips what sticks out of it: the ring of a tab was one line at its side. */
[role="tab"]:focus-visible {{ outline-offset: -3px !important; }}
/* A radio's ring is on its label (below): the small circle alone was hard to find. */
fieldset.block label > input[type="radio"]:focus-visible {{ outline: none !important; }}
fieldset.block label:has(> input[type="radio"]:focus-visible) {{
  outline: 3px solid var(--tunesmith-focus) !important; outline-offset: 2px;
}}
"""

#: The live status is for the ear: on the page the result it sums up is shown already.
PAGE_CSS = f"""
.block.{LIVE_CLASS} {{
  position: absolute !important; width: 1px !important; height: 1px !important;
  margin: -1px !important; padding: 0 !important; border: 0 !important;
  overflow: hidden !important; clip-path: inset(50%) !important; white-space: nowrap !important;
}}
{FOCUS_CSS}"""


def page_options(**given: Any) -> dict[str, Any]:
    """The ``launch()`` arguments that make a page say what Gradio leaves unsaid (its script,
    CSS and missing texts), joined with ``given`` (a caller's own ``js``/``css`` run first)."""
    import gradio as gr

    options = dict(given)
    css = options.get("css")
    options["css"] = f"{css}\n{PAGE_CSS}" if css else PAGE_CSS
    script = options.get("js")
    options["js"] = f"() => {{ ({script})(); ({PAGE_SCRIPT})(); }}" if script else PAGE_SCRIPT
    options.setdefault("i18n", gr.I18n(en=dict(MISSING_TEXTS)))
    return options


@dataclass
class LiveStatus:
    """A polite status line a screen reader reads by itself after an action (made with
    :func:`live_status`): ``text`` is its Markdown, ``turn`` counts what it said."""

    text: Any
    turn: Any

    def said(self, message: str, turn: int | None) -> tuple[str, int]:
        """``(text, turn)``: ``message`` (Markdown), told apart from the one before by an
        invisible mark, so that the same result twice (a second hand-off) is announced again:
        an unchanged text is never redrawn, so never read."""
        turn = int(turn or 0) + 1
        return message + "\u200b" * (turn % 2), turn

    def announce(self, event: Any, say: Callable[..., str | None], sources: Sequence[Any]) -> Any:
        """Chain onto ``event`` (what ``button.click(...)`` returned): once it has run,
        ``say(*values of sources)`` (what the event showed) is announced; ``None`` or an empty
        text says nothing. The event's own handler is left as it is."""
        import gradio as gr

        def tell(*args: Any) -> tuple[Any, Any]:
            *values, turn = args
            message = say(*values)
            if not message:
                return gr.skip(), gr.skip()
            return self.said(message, turn)

        return event.then(
            tell, [*sources, self.turn], [self.text, self.turn], show_progress="hidden"
        )


def live_status(elem_id: str | None = None) -> LiveStatus:
    """A :class:`LiveStatus` (call inside a Blocks; it is hidden from the eye, and read where
    it sits: put it after the results it sums up). ``live.announce(button.click(...), say,
    [outputs...])`` makes an action speak."""
    import gradio as gr

    from tunesmith.ui.markdown import markdown_box

    # It says names and ids from the data ("from entry `a$$b`"): no LaTeX, as on the page.
    text = markdown_box("", elem_id=elem_id, elem_classes=[LIVE_CLASS])
    return LiveStatus(text=text, turn=gr.State(0))


def first_sentence(markdown: str) -> str:
    """The first sentence of a note (up to a full stop outside brackets), the rest of it left
    for the page: a status is heard whole, and is best short."""
    depth = 0
    for index, char in enumerate(markdown):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "\n" or (
            char in ".!?" and depth <= 0 and markdown[index + 1 : index + 2] in ("", " ", "\n")
        ):
            return markdown[: index + 1].strip()
    return markdown.strip()
