// The conversation as shown: one list item per turn, text set with textContent only (model output is never
// parsed as markup), an assistant turn's reasoning in a collapsible block of its own.

function h(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Transcript {
  /** `list`: the <ol> of turns; `scroller`: the element that scrolls them. */
  constructor(list, scroller) {
    this.list = list;
    this.scroller = scroller;
  }

  clear() {
    this.list.replaceChildren();
  }

  /** Keeps the newest text in view, unless the user scrolled up to read. */
  follow(apply) {
    const box = this.scroller;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    apply();
    if (atEnd) box.scrollTop = box.scrollHeight;
  }

  addUser(text) {
    const li = h('li', 'msg user');
    li.append(h('div', 'who', 'You'), h('div', 'content', text));
    this.follow(() => this.list.append(li));
    return li;
  }

  /** An assistant turn being streamed; the returned view fills it in. */
  addAssistant() {
    const li = h('li', 'msg assistant');
    li.dataset.state = 'streaming';
    const reasoning = h('details', 'reasoning');
    const summary = h('summary', '', 'Thinking…');
    const reasoningText = h('div', 'reasoning-text');
    reasoning.append(summary, reasoningText);
    reasoning.hidden = true;
    const content = h('div', 'content');
    const meta = h('div', 'meta');
    const error = h('div', 'error');
    error.hidden = true;
    li.append(h('div', 'who', 'Assistant'), reasoning, content, error, meta);
    this.follow(() => this.list.append(li));
    const follow = (f) => this.follow(f);
    return {
      appendReasoning(text) {
        follow(() => {
          if (reasoning.hidden) {
            reasoning.hidden = false;
            reasoning.open = true;
          }
          reasoningText.textContent += text;
        });
      },
      appendContent(text) {
        follow(() => {
          // The answer has begun: fold the thinking away (a click opens it again).
          if (!reasoning.hidden && summary.textContent !== 'Reasoning') {
            summary.textContent = 'Reasoning';
            reasoning.open = false;
          }
          content.textContent += text;
        });
      },
      finish(state, metaText) {
        li.dataset.state = state;
        if (!reasoning.hidden) summary.textContent = 'Reasoning';
        meta.textContent = metaText;
      },
      fail(message) {
        li.dataset.state = 'error';
        if (!reasoning.hidden) summary.textContent = 'Reasoning';
        error.textContent = message;
        error.hidden = false;
      },
    };
  }

  /** A notice of the page's own (models could not be listed…), shown as a turn. */
  addNotice(message) {
    const li = h('li', 'msg notice');
    li.append(h('div', 'error', message));
    this.follow(() => this.list.append(li));
  }
}
