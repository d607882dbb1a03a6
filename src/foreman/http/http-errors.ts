import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { CrowdComputeError, formatBytes, type ErrorCode } from '../../protocol/index.ts';

const STATUS: Partial<Record<ErrorCode, number>> = {
  CC_ERR_UNAUTHORIZED: 401,
  CC_ERR_FORBIDDEN: 403,
  CC_ERR_NOT_FOUND: 404,
  CC_ERR_JOB_NOT_FOUND: 404,
  CC_ERR_JOB_PRUNED: 404,
  CC_ERR_WORKER_NOT_FOUND: 404,
  CC_ERR_RATE_LIMIT_NOT_FOUND: 404,
  CC_ERR_KEY_NOT_FOUND: 404,
  CC_ERR_NOTHING_TO_RETRY: 409,
  CC_ERR_JOB_SEALED: 409,
  CC_ERR_APPEND_CONFLICT: 409,
  CC_ERR_STORE_UNAVAILABLE: 503,
  CC_ERR_STORE_FULL: 507,
  CC_ERR_TASK_NOT_FOUND: 404,
  CC_ERR_INVALID_JOB: 400,
  CC_ERR_INVALID_SCHEDULE: 400,
  CC_ERR_SCHEDULE_NOT_FOUND: 404,
  CC_ERR_SCHEDULE_EXISTS: 409,
  CC_ERR_BAD_JSON: 400,
  CC_ERR_BAD_MESSAGE: 400,
  CC_ERR_TOO_DEEP: 400,
  CC_ERR_CODE_COMPILE: 400,
  CC_ERR_PAYLOAD_TOO_LARGE: 413,
  CC_ERR_TASK_EXISTS: 409,
  CC_ERR_RATE_LIMITED: 429,
  CC_ERR_SHUTTING_DOWN: 503,
};

/**
 * Every REST error body is `{ code, message, detail }`: `code` is stable, `message` says what
 * and which limit, `detail` repeats it for clients written against FastAPI's shape.
 */
export function makeErrorHandler(log: Logger, maxBodyBytes: number, maxFileBytes = maxBodyBytes) {
  return (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    let err: CrowdComputeError;
    if (error instanceof CrowdComputeError) err = error;
    else if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // A file upload has a limit of its own.
      const file = request.routeOptions.url === '/api/files';
      const limit = file ? maxFileBytes : maxBodyBytes;
      err = new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `${file ? 'the file' : 'request body'} exceeds ${formatBytes(limit)}, the foreman's limit (${file ? '--max-file-size' : '--max-payload'})`, { limit });
    } else if ((error as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (error instanceof SyntaxError && (error as FastifyError).statusCode === 400)) {
      err = new CrowdComputeError('CC_ERR_BAD_JSON', `request body is not valid JSON: ${error.message}`);
    } else if ((error as FastifyError).statusCode && (error as FastifyError).statusCode! < 500) {
      reply.status((error as FastifyError).statusCode!).send({ code: (error as FastifyError).code ?? 'CC_ERR_BAD_MESSAGE', message: error.message, detail: error.message });
      return;
    } else {
      log.error({ err: error, url: request.url }, 'request failed');
      err = new CrowdComputeError('CC_ERR_INTERNAL', `internal error: ${error.message}`);
    }
    if (err.code === 'CC_ERR_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="crowdcompute"');
    if (err.code === 'CC_ERR_STORE_UNAVAILABLE') reply.header('retry-after', '2');
    reply.status(STATUS[err.code] ?? 500).send({ code: err.code, message: err.message, detail: err.message, ...(err.details ? { details: err.details } : {}) });
  };
}

/** 404 for a path no route answers, in the same body as every other error. */
export function notFound(request: FastifyRequest, reply: FastifyReply): void {
  const message = `CC_ERR_NOT_FOUND: no route answers ${request.method} ${request.url.split('?')[0].slice(0, 200)}`;
  reply.status(404).send({ code: 'CC_ERR_NOT_FOUND', message, detail: message });
}
