// Chat messages → prompt token ids: through the model's chat template (with --force_think's `<think>`), the
// template's markup becoming control tokens while everything the client wrote stays text, unless it asks for
// parse_special.
import { ChatTemplateError, ClientTextPlaceholders, type ChatMessage } from '../tokenizer/index.js';
import { ApiError, badRequest } from './errors.js';
import { checkJsonBounds } from './json-bounds.js';
import { encodeText } from './prompt.js';
import type { ServerContext } from './request-options.js';
import type { ReasoningMode } from './text-stream.js';

/** A chat message as clients send it: content is a string, null, or a list of parts. */
export interface WireMessage {
  role: string;
  content?: string | null | Array<{ type: string; text?: string }>;
  name?: string;
  reasoning_content?: string | null;
  tool_calls?: unknown[];
  tool_call_id?: string;
}

export interface ChatPromptOptions {
  /** More template variables (chat_template_kwargs). */
  templateArgs?: Record<string, unknown> | undefined;
  /**
   * Special-token texts the client wrote (in messages or templateArgs) become control tokens. Off by default: a
   * user could otherwise end their turn and open a system turn of their own by typing `<|im_end|>`.
   */
  parseSpecial?: boolean | undefined;
}

export interface ChatPrompt {
  ids: number[];
  reasoning: ReasoningMode;
}

function messageText(m: WireMessage, i: number): string | null {
  const c = m.content;
  if (c === undefined || c === null || typeof c === 'string') return c ?? null;
  return c
    .map((part, j) => {
      if (part.type !== 'text' || typeof part.text !== 'string') {
        throw badRequest(`content part of type ${JSON.stringify(part.type)} is not supported (text only)`, `messages[${i}].content[${j}].type`);
      }
      return part.text;
    })
    .join('');
}

function chatMessages(wire: readonly WireMessage[]): ChatMessage[] {
  return wire.map((m, i) => {
    const msg: ChatMessage = { role: m.role, content: messageText(m, i) };
    if (m.name !== undefined) msg.name = m.name;
    if (typeof m.reasoning_content === 'string') msg.reasoning_content = m.reasoning_content;
    if (m.tool_calls !== undefined) msg.tool_calls = m.tool_calls;
    if (m.tool_call_id !== undefined) msg.tool_call_id = m.tool_call_id;
    return msg;
  });
}

/** Renders the conversation for the model to answer; the assistant turn is left open. */
export async function chatPrompt(ctx: ServerContext, wire: readonly WireMessage[], opts: ChatPromptOptions = {}): Promise<ChatPrompt> {
  if (wire.length === 0) throw badRequest('messages must not be empty', 'messages');
  const { templateArgs } = opts;
  if (templateArgs !== undefined) checkJsonBounds(templateArgs, 'chat_template_kwargs');
  wire.forEach((m, i) => m.tool_calls !== undefined && checkJsonBounds(m.tool_calls, `messages[${i}].tool_calls`));
  // Every string the client sent goes through the template with its special-token texts placeholdered (see
  // client-text.ts), and comes out as text ranges the tokenizer matches no special token over.
  const placeholders = opts.parseSpecial === true ? undefined : new ClientTextPlaceholders(ctx.specialTexts);
  const messages = chatMessages(wire);
  const client = placeholders ? placeholders.protect({ messages, templateArgs }) : { messages, templateArgs };
  let rendered: string;
  if (ctx.chatTemplate) {
    try {
      const extra = client.templateArgs ? { extra: client.templateArgs } : {};
      rendered = ctx.chatTemplate.render(client.messages, { addGenerationPrompt: true, ...extra });
    } catch (e) {
      throw templateFailure(e, placeholders);
    }
  } else {
    // No template in the model files: a plain transcript is better than refusing chat altogether.
    rendered = client.messages.map((m) => `${m.role}: ${m.content ?? ''}\n`).join('') + 'assistant:';
  }
  let { text, textRanges } = placeholders ? placeholders.restore(rendered) : { text: rendered, textRanges: [] };
  const opened = /<think>\n?$/.test(text);
  if (ctx.forceThink && !opened) text += '<think>\n';
  // The template writes BOS itself where the model wants one; the transcript fallback has no template to do it.
  const ids = await encodeText(ctx, text, { addSpecialTokens: !ctx.chatTemplate, textRanges }, 'messages');
  // A prompt that ends inside an open think block (--force_think, or a template that opens it, as newer R1
  // templates do) is answered with reasoning first; otherwise the model may still open one itself.
  return { ids, reasoning: ctx.forceThink || opened ? 'forced' : 'detect' };
}

/**
 * A template's refusal (raise_exception) is the client's to read, in the template's words. When the interpreter
 * stops on the input, the request is still what it could not render, but its message is about our internals: the
 * client gets ours. Anything else is our fault: a 500 (whose message toApiError keeps to itself).
 */
function templateFailure(e: unknown, placeholders: ClientTextPlaceholders | undefined): unknown {
  if (!(e instanceof ChatTemplateError)) return e;
  if (e.failure === 'raised') {
    // The template may quote client text (a role it does not know): with the client's characters back.
    const message = placeholders ? placeholders.restore(e.message).text : e.message;
    return badRequest(`the chat template refused these messages: ${message}`, 'messages');
  }
  return new ApiError(400, "the model's chat template could not render these messages (check their roles, order and content)", {
    param: 'messages',
    cause: e,
  });
}
