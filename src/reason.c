/*-------------------------------------------------------------------------
 *
 * reason.c
 *	  Reason sentences for every decision, in German and English.  A code
 *	  is stable (applications branch on it); the sentence is for the
 *	  customer, so it says what happened and what they can do.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "reason.h"

typedef struct Reason
{
	const char *code;
	const char *de;
	const char *en;
} Reason;

static const Reason reasons[] = {
	/* loyalty: refusals and the lines of loyalty_history() */
	{"insufficient_points", "Sie haben nicht genügend verfügbare Punkte für diese Einlösung.",
	"You do not have enough available points for this redemption."},
	{"no_loyalty_terms", "In der Währung dieses Verkaufskanals können keine Punkte eingelöst werden.",
	"Points cannot be redeemed in the currency of this sales channel."},
	{"points_earned", "Punkte für Ihren Einkauf gutgeschrieben.", "Points credited for your purchase."},
	{"points_redeemed", "Punkte in Guthaben auf Ihrem Kundenkonto umgewandelt.",
	"Points turned into store credit on your account."},
	{"points_expired", "Punkte sind verfallen.", "Points expired."},
	{"points_cancelled", "Punkte einer stornierten Bestellung zurückgebucht.",
	"Points of a cancelled order taken back."},
	{"points_returned", "Punkte für zurückgegebene Artikel zurückgebucht.",
	"Points for returned items taken back."},
	{"reactivation_credit", "Willkommen zurück! Wir haben Ihrem Kundenkonto eine Gutschrift erteilt.",
	"Welcome back! We have credited your account."},
	{"reactivation_credit_cancelled", "Die Willkommensgutschrift wurde mit der Stornierung der Bestellung zurückgenommen.",
	"The welcome-back credit was taken back when the order was cancelled."},
	/* payment methods */
	{"ok", "Diese Zahlungsart steht Ihnen zur Verfügung.", "This payment method is available to you."},
	{"overdue_debt", "Es sind noch überfällige Rechnungen offen; bitte begleichen Sie diese zuerst oder wählen Sie eine sofortige Zahlungsart.",
	"You have overdue invoices; please settle them first or choose a payment method that pays at once."},
	{"credit_limit_exceeded", "Mit dieser Bestellung würde Ihr Kreditrahmen überschritten; bitte wählen Sie eine sofortige Zahlungsart oder Vorkasse.",
	"This order would exceed your credit limit; please choose a payment method that pays at once, or prepayment."},
	{"new_customer_limit", "Für Neukunden ist Kauf auf Rechnung nur bis zu einem kleineren Betrag möglich; bitte wählen Sie eine andere Zahlungsart.",
	"For new customers, buying on account is limited to a smaller amount; please choose another payment method."},
	{"frequent_returner", "Wegen vieler Rücksendungen in den letzten zwölf Monaten ist Kauf auf Rechnung derzeit nicht möglich.",
	"Because of many returns in the last twelve months, buying on account is not available at the moment."},
	{"dunning", "Wegen eines laufenden Mahnverfahrens ist Kauf auf Rechnung derzeit nicht möglich.",
	"Because of an ongoing payment reminder, buying on account is not available at the moment."},
	{"customer_blocked", "Ihr Kundenkonto ist gesperrt; es ist nur sofortige Zahlung möglich. Bitte wenden Sie sich an unseren Kundenservice.",
	"Your account is blocked; only immediate payment is possible. Please contact our customer service."},
	{"not_offered_on_channel", "Diese Zahlungsart wird in diesem Verkaufskanal nicht angeboten.",
	"This payment method is not offered on this sales channel."},
	{"amount_out_of_range", "Für diesen Betrag ist diese Zahlungsart nicht verfügbar.",
	"This payment method is not available for this amount."},
	{"insufficient_store_credit", "Ihr Guthaben reicht für diesen Betrag nicht aus.",
	"Your store credit does not cover this amount."},
	/* returns (decide_return, accept_return): "return." and the code; "ok" per action */
	{"return.ok.refund_cash", "Die Rückgabe ist möglich; Sie erhalten den Betrag in bar zurück.",
	"The return is accepted; you get the amount back in cash."},
	{"return.ok.refund_original_payment", "Die Rückgabe ist möglich; der Betrag wird auf Ihr ursprüngliches Zahlungsmittel erstattet.",
	"The return is accepted; the amount is refunded to your original payment method."},
	{"return.ok.reduce_open_invoice", "Die Rückgabe ist möglich; Ihre offene Rechnung wird um den Betrag gekürzt.",
	"The return is accepted; your open invoice is reduced by the amount."},
	{"return.ok.store_credit", "Die Rückgabe ist möglich; der Betrag wird Ihrem Kundenkonto als Guthaben gutgeschrieben.",
	"The return is accepted; the amount is credited to your account as store credit."},
	{"return.ok.exchange_only", "Die Rückgabe ist möglich; der Betrag steht Ihnen für einen Umtausch zur Verfügung.",
	"The return is accepted; the amount is available to you for an exchange."},
	{"return.ok.refund_via_marketplace", "Die Rückgabe ist möglich; der Betrag wird über den Marktplatz erstattet.",
	"The return is accepted; the amount is refunded through the marketplace."},
	{"return.not_sold_by_us", "Dieser Artikel wurde laut unseren Unterlagen mit dieser Bestellung nicht verkauft.",
	"According to our records, this item was not sold on this order."},
	{"return.not_delivered", "Diese Bestellung ist noch nicht zugestellt; eine Rückgabe ist erst nach der Lieferung möglich.",
	"This order has not been delivered yet; it can be returned once it has arrived."},
	{"return.already_returned", "Dieser Artikel wurde bereits zurückgegeben oder zur Rücksendung angemeldet.",
	"This item has already been returned or announced for return."},
	{"return.quantity_exceeds_purchase", "Die Menge ist größer als die mit dieser Bestellung gekaufte Menge.",
	"The quantity is more than was bought on this order."},
	{"return.return_window_expired", "Die Rückgabefrist für diesen Artikel ist abgelaufen.",
	"The return period for this item has ended."},
	{"return.item_not_returnable", "Dieser Artikel ist von der Rückgabe ausgeschlossen.",
	"This item cannot be returned."},
	{"return.unpaid_order", "Die Rechnung ist noch nicht bezahlt; sie wird um diesen Betrag gekürzt, statt ihn auszuzahlen.",
	"The invoice is not paid yet; it is reduced by this amount instead of paying it out."},
	{"return.marketplace_order", "Die Bestellung lief über einen Marktplatz; der Betrag wird über den Marktplatz erstattet.",
	"The order was placed on a marketplace; the amount is refunded through the marketplace."},
	{"return.cash_limit_exceeded", "An der Kasse zahlen wir Bargeld nur bis zu einem Höchstbetrag aus; dieser Teil wird anders erstattet.",
	"Cash refunds at the till are limited; this part is refunded another way."},
	{"return.frequent_returner", "Wegen vieler Rücksendungen in den letzten zwölf Monaten erstatten wir Einkäufe im Geschäft als Guthaben.",
	"Because of many returns in the last twelve months, store purchases are refunded as store credit."},
	{"return.offset_against_debt", "Dieser Betrag wird mit Ihren überfälligen Rechnungen verrechnet.",
	"This amount is set off against your overdue invoices."},
	{"return.customer_blocked", "Ihr Kundenkonto ist gesperrt; bitte wenden Sie sich an unseren Kundenservice.",
	"Your account is blocked; please contact our customer service."},
	{"return.exchange_only", "Dieser Artikel kann nur umgetauscht werden; der Betrag steht Ihnen als Guthaben für den Umtausch zur Verfügung.",
	"This item can only be exchanged; the amount is available to you as credit for the exchange."},
	/* account advice */
	{"remind_payment", "Der Kunde hat überfällige Rechnungen: an die Zahlung erinnern.",
	"The customer has overdue invoices: remind them to pay."},
	{"prepayment_only", "Nur Vorkasse oder sofortige Zahlung anbieten.",
	"Offer only prepayment or immediate payment."},
	{"credit_allowed", "Kauf auf Rechnung ist möglich.", "Buying on account is possible."},
	{"send_incentive", "Der Kunde hat lange nicht gekauft: einen Anreiz senden.",
	"The customer has not bought for a long time: send an incentive."},
	{"frequent_returner_advice", "Der Kunde sendet viel zurück: auf Größen und Beratung achten.",
	"The customer returns a lot: help with sizes and advice."},
	{"good_standing", "Das Konto ist ausgeglichen.", "The account is in good standing."},
};

static const Reason *
find_reason(const char *code)
{
	for (int i = 0; i < (int) lengthof(reasons); i++)
		if (strcmp(reasons[i].code, code) == 0)
			return &reasons[i];
	return NULL;
}

bool
ca_reason_known(const char *code)
{
	return find_reason(code) != NULL;
}

const char *
ca_reason_text(const char *code, const char *language)
{
	const Reason *r = find_reason(code);

	if (r == NULL)
		elog(ERROR, "reason code \"%s\" has no sentence in the catalog", code);
	if (language != NULL && strcmp(language, "de") == 0)
		return r->de;
	return r->en;
}
