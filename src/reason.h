/*-------------------------------------------------------------------------
 *
 * reason.h
 *	  The one catalog of reason sentences: code -> sentence per language.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_REASON_H
#define CUSTOMER_ACCOUNT_REASON_H

/* the sentence for code in language ("de", "en"; others fall back to "en") */
extern const char *ca_reason_text(const char *code, const char *language);
extern bool ca_reason_known(const char *code);

#endif
