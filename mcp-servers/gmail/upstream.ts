// Schemas of the Gmail API v1 and Google OAuth responses the tools read.
import { z } from 'zod';

export const GmHeader = z.object({ name: z.string(), value: z.string() });

export interface GmPartShape {
  partId?: string | null;
  mimeType?: string | null;
  filename?: string | null;
  headers?: z.infer<typeof GmHeader>[] | null;
  body?: { attachmentId?: string | null; size?: number | null; data?: string | null } | null;
  parts?: GmPartShape[] | null;
}

/** A MIME part of a message, nested as deep as the message is. */
export const GmPart: z.ZodType<GmPartShape> = z.lazy(() =>
  z.object({
    partId: z.string().nullish(),
    mimeType: z.string().nullish(),
    filename: z.string().nullish(),
    headers: z.array(GmHeader).nullish(),
    body: z
      .object({
        attachmentId: z.string().nullish(),
        size: z.number().nullish(),
        data: z.string().nullish(),
      })
      .nullish(),
    parts: z.array(GmPart).nullish(),
  }),
);

export const GmMessage = z.object({
  id: z.string(),
  threadId: z.string(),
  labelIds: z.array(z.string()).nullish(),
  snippet: z.string().nullish(),
  internalDate: z.string().nullish(),
  sizeEstimate: z.number().nullish(),
  payload: GmPart.nullish(),
});
export type GmMessage = z.infer<typeof GmMessage>;

export const GmMessageList = z.object({
  messages: z.array(z.object({ id: z.string(), threadId: z.string() })).nullish(),
  nextPageToken: z.string().nullish(),
  resultSizeEstimate: z.number().nullish(),
});

export const GmThread = z.object({ id: z.string(), messages: z.array(GmMessage).nullish() });

export const GmLabel = z.object({
  id: z.string(),
  name: z.string(),
  type: z.string().nullish(),
});

export const GmLabelList = z.object({ labels: z.array(GmLabel).nullish() });

export const GmDraft = z.object({
  id: z.string(),
  message: z.object({
    id: z.string(),
    threadId: z.string(),
    labelIds: z.array(z.string()).nullish(),
  }),
});

/** Google's API error body: `{ error: { code, message, status, errors: [{ reason }] } }`. */
export const GoogleErrorBody = z.object({
  error: z.object({
    message: z.string().optional(),
    status: z.string().optional(),
    errors: z.array(z.object({ reason: z.string().optional() })).optional(),
  }),
});

/** Google's OAuth token endpoint: success and error bodies. */
export const OAuthTokenResponse = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().optional(),
});
export const OAuthErrorBody = z.object({
  error: z.string(),
  error_description: z.string().optional(),
});
