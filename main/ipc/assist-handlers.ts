/**
 * The assist half of the API: prompt templates (stored, editable) run on a selection, and "Classify tone".
 * Inputs are checked here (the renderer is untrusted); templates are checked again by the store.
 */
import type {
  ApiHandlers,
  AssistEvent,
  DecodingSettings,
  Settings,
  Template,
  TemplateInput,
  ToneResult,
} from './contract.js';
import { CONTINUE_TEMPLATE_ID } from './contract.js';
import { ApiError } from './errors.js';
import { decodingPatch, id, string } from './validate.js';
import type { EngineAssistRequest, EngineClassifyRequest } from '../engine/host.js';
import type { ZeroShotResult } from '../../worker/classify/zero-shot.js';
import { builtinTemplate, type PromptTemplate } from '../../worker/rewrite/templates.js';

export const ASSIST_LIMITS = {
  /** A selection to rewrite or classify: a few paragraphs. GPT-2 sees 1024 tokens, prompt included. */
  selectionChars: 4_000,
  templateChars: 8_000,
  /** New tokens of a rewrite when neither the request nor the template says. */
  defaultNewTokens: 64,
  /** New tokens of "Continue". */
  continueNewTokens: 48,
} as const;

/** The store's templates (main/store/templates.ts). */
export interface ApiTemplates {
  list(): Template[];
  get(id: string): Template | null;
  save(input: TemplateInput): Template;
  delete(id: string): void;
  reset(id: string): Template;
}

/** The engine host's assist methods (main/engine/host.ts). */
export interface ApiAssistEngine {
  assist(request: EngineAssistRequest, onEvent: (event: AssistEvent) => void): void;
  cancelAssist(requestId: string): void;
  classify(request: EngineClassifyRequest): Promise<ZeroShotResult>;
}

export function isAssistEngine(engine: object): engine is ApiAssistEngine {
  return typeof (engine as Partial<ApiAssistEngine>).assist === 'function';
}

type AssistHandlerNames = 'listTemplates' | 'saveTemplate' | 'deleteTemplate' | 'resetTemplate' | 'runTemplate' | 'cancelAssist' | 'classifyTone';

export interface AssistParts {
  templates: ApiTemplates | null;
  engine: ApiAssistEngine | null;
  getSettings(): Settings;
  emit(event: AssistEvent): void;
  /** Why there is no engine to run on (the engine's status error). */
  unavailable(): ApiError;
}

function plainObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiError('INVALID_INPUT', `${name} must be an object`);
  return value as Record<string, unknown>;
}

/** A template from the renderer; a whole `Template` passes too (its read-only fields are ignored). */
export function templateInput(value: unknown, name = 'template'): TemplateInput {
  const input = plainObject(value, name);
  const readOnly = ['builtin', 'modified', 'updatedAt'];
  for (const key of Object.keys(input)) {
    if (!['id', 'name', 'kind', 'prompt', 'stop', 'note', ...readOnly].includes(key)) {
      throw new ApiError('INVALID_INPUT', `${name} has an unknown field "${key.slice(0, 64)}"`);
    }
  }
  const kind = input.kind;
  if (kind !== 'rewrite' && kind !== 'translate') throw new ApiError('INVALID_INPUT', `${name}.kind must be "rewrite" or "translate"`);
  if (!Array.isArray(input.stop) || input.stop.length > 16) throw new ApiError('INVALID_INPUT', `${name}.stop must be a list of stop strings`);
  const note = input.note == null ? null : string(1_000)(input.note, `${name}.note`);
  return {
    ...(input.id == null ? {} : { id: id(input.id, `${name}.id`) }),
    name: string(200)(input.name, `${name}.name`),
    kind,
    prompt: string(ASSIST_LIMITS.templateChars)(input.prompt, `${name}.prompt`),
    stop: input.stop.map((s, i) => string(64)(s, `${name}.stop[${i}]`)),
    note,
  };
}

export function selectionText(value: unknown, name = 'text'): string {
  const text = string(ASSIST_LIMITS.selectionChars)(value, name);
  if (text.trim() === '') throw new ApiError('INVALID_INPUT', `${name} is empty: select some text first`);
  return text;
}

/** The engine request of a template run: the template's own length, greedy unless the request says. */
function engineRequest(requestId: string, template: Template | null, text: string, decoding: Partial<DecodingSettings>, settings: Settings): EngineAssistRequest {
  if (template === null) {
    // "Continue" is a suggestion made longer: the user's sampling settings apply.
    const d = { ...settings.decoding, ...decoding };
    return {
      requestId,
      template: { id: CONTINUE_TEMPLATE_ID, name: 'Continue', kind: 'rewrite', prompt: '{text}', stop: [] },
      text,
      keepLeadingSpace: true,
      options: {
        maxNewTokens: decoding.maxNewTokens ?? ASSIST_LIMITS.continueNewTokens,
        doSample: d.doSample,
        temperature: d.temperature,
        topK: d.topK,
        topP: d.topP,
        repetitionPenalty: d.repetitionPenalty,
        noRepeatNgramSize: d.noRepeatNgramSize,
      },
    };
  }
  const prompt: PromptTemplate = {
    id: template.id,
    name: template.name,
    kind: template.kind,
    prompt: template.prompt,
    stop: template.stop,
    note: template.note ?? undefined,
    generation: template.builtin ? builtinTemplate(template.id)?.generation : undefined,
  };
  // A rewrite follows the pattern most faithfully greedily; the user's decoding overrides say otherwise.
  return {
    requestId,
    template: prompt,
    text,
    options: {
      maxNewTokens: decoding.maxNewTokens ?? prompt.generation?.maxNewTokens ?? ASSIST_LIMITS.defaultNewTokens,
      doSample: decoding.doSample ?? false,
      temperature: decoding.temperature,
      topK: decoding.topK,
      topP: decoding.topP,
      repetitionPenalty: decoding.repetitionPenalty,
      noRepeatNgramSize: decoding.noRepeatNgramSize,
    },
  };
}

export function toneResult(result: ZeroShotResult, calibrated: boolean): ToneResult {
  return {
    label: result.label,
    calibrated,
    scores: result.scores.map((s) => ({ label: s.label, probability: s.calibratedProbability, uncalibratedProbability: s.probability })),
  };
}

export function createAssistHandlers(parts: AssistParts): Pick<ApiHandlers, AssistHandlerNames> {
  const templates = (): ApiTemplates => {
    if (parts.templates === null) throw new ApiError('NOT_AVAILABLE', 'templates are not available in this store');
    return parts.templates;
  };
  const engine = (): ApiAssistEngine => {
    if (parts.engine === null) throw parts.unavailable();
    return parts.engine;
  };
  return {
    async listTemplates() {
      return parts.templates === null ? [] : parts.templates.list();
    },
    async saveTemplate(input) {
      return templates().save(templateInput(input));
    },
    async deleteTemplate(templateId) {
      templates().delete(id(templateId, 'id'));
    },
    async resetTemplate(templateId) {
      return templates().reset(id(templateId, 'id'));
    },
    async runTemplate(request) {
      const input = plainObject(request, 'request');
      for (const key of Object.keys(input)) {
        if (!['requestId', 'templateId', 'text', 'decoding'].includes(key)) throw new ApiError('INVALID_INPUT', `request has an unknown field "${key.slice(0, 64)}"`);
      }
      const requestId = id(input.requestId, 'request.requestId');
      const templateId = id(input.templateId, 'request.templateId');
      const text = selectionText(input.text, 'request.text');
      const decoding = input.decoding == null ? {} : decodingPatch(input.decoding, 'request.decoding');
      let template: Template | null = null;
      if (templateId !== CONTINUE_TEMPLATE_ID) {
        template = templates().get(templateId);
        if (template === null) throw new ApiError('NOT_FOUND', `there is no template "${templateId}"`);
      }
      engine().assist(engineRequest(requestId, template, text, decoding, parts.getSettings()), parts.emit);
    },
    async cancelAssist(requestId) {
      parts.engine?.cancelAssist(id(requestId, 'requestId'));
    },
    async classifyTone(text) {
      const checked = selectionText(text);
      const settings = parts.getSettings();
      const result = await engine().classify({
        text: checked,
        labels: settings.toneLabels,
        template: settings.toneTemplate,
        calibrate: settings.toneCalibrate,
      });
      return toneResult(result, settings.toneCalibrate);
    },
  };
}
