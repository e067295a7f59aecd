//! Step 5, the card: the credential was verified (signature, issuer, validity window) before
//! the rate limits and is spent here; then the card registry's state must satisfy the action's
//! card-status policy and the assurance levels (实名 / 实卡 / 实人) it requires.

use std::collections::BTreeSet;

use onecard_catalog::model::{Assurance, CardStatus, CardStatusPolicy};
use onecard_catalog::snapshot::CardState;

use crate::bindings::{Assurance as ViewAssurance, CardStatus as ViewStatus};
use crate::error::{GatewayError, codes};

/// The consent scope by which a holder authorizes use of a temporarily lost card.
pub const TEMPORARY_LOSS_SCOPE: &str = "card.temporary_loss_use";

/// Checks `card` against `policy` and the `required` assurance. `holder_authorized` says
/// whether a live consent of the holder covers [`TEMPORARY_LOSS_SCOPE`]; `moves_money` adds the
/// bank-account requirement to 实卡; `real_person_checked` is the channel's face check.
pub fn check(
    card: &CardState,
    policy: &CardStatusPolicy,
    required: &BTreeSet<Assurance>,
    moves_money: bool,
    holder_authorized: bool,
    real_person_checked: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), GatewayError> {
    if card.valid_until <= now {
        return Err(GatewayError::of(codes::CARD_EXPIRED, format!("the card expired on {}", card.valid_until.date_naive())));
    }
    // Formal loss and cancellation are final: no policy may allow them.
    match card.status {
        CardStatus::FormalLoss => return Err(GatewayError::of(codes::CARD_LOST, "the card is reported lost")),
        CardStatus::Cancelled => return Err(GatewayError::of(codes::CARD_CANCELLED, "the card is cancelled")),
        _ => {}
    }
    if !policy.allow.contains(&card.status) {
        return Err(match card.status {
            CardStatus::Sealed => GatewayError::of(codes::CARD_SEALED, "the card's social functions are not enabled yet"),
            CardStatus::TemporaryLoss => GatewayError::of(codes::CARD_TEMPORARILY_LOST, "the card is reported temporarily lost"),
            other => GatewayError::of(codes::CARD_STATUS_NOT_ALLOWED, format!("card status {} is not allowed for this action", other.as_str())),
        });
    }
    if card.status == CardStatus::TemporaryLoss && policy.temporary_loss_needs_holder_authorization && !holder_authorized {
        return Err(GatewayError::of(
            codes::HOLDER_AUTHORIZATION_REQUIRED,
            format!("the card is temporarily lost; the holder has not authorized its use (consent scope `{TEMPORARY_LOSS_SCOPE}`)"),
        ));
    }
    if policy.social_account_unlocked && card.social_locked {
        return Err(GatewayError::of(codes::CARD_LOCKED, "the card's social account is locked"));
    }
    if policy.financial_account_unlocked && card.financial_locked {
        return Err(GatewayError::of(codes::CARD_LOCKED, "the card's financial account is locked"));
    }
    for level in required {
        let (met, what) = match level {
            Assurance::RealName => (card.real_name, "实名: name and ID number verified"),
            Assurance::RealCard => (
                card.real_card && (!moves_money || card.bank_activated),
                if moves_money { "实卡: an activated card with its bank account activated" } else { "实卡: an issued, activated card" },
            ),
            Assurance::RealPerson => (card.real_person && real_person_checked, "实人: face enrolled and a face check with liveness in this request"),
        };
        if !met {
            return Err(GatewayError::of(codes::ASSURANCE_NOT_MET, format!("the action needs {what}")));
        }
    }
    Ok(())
}

/// The card's status as the plugin contract names it (an account lock shows as `locked`).
pub fn view_status(card: &CardState) -> ViewStatus {
    match card.status {
        CardStatus::Sealed => ViewStatus::Sealed,
        CardStatus::Normal if card.social_locked => ViewStatus::Locked,
        CardStatus::Normal => ViewStatus::Normal,
        CardStatus::TemporaryLoss => ViewStatus::TemporaryLoss,
        CardStatus::FormalLoss => ViewStatus::FormalLoss,
        CardStatus::Cancelled => ViewStatus::Cancelled,
    }
}

/// The highest assurance level this request meets.
pub fn view_assurance(card: &CardState, real_person_checked: bool) -> ViewAssurance {
    if card.real_person && real_person_checked {
        ViewAssurance::RealPerson
    } else if card.real_card {
        ViewAssurance::RealCard
    } else {
        ViewAssurance::RealName
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(status: CardStatus) -> CardState {
        CardState {
            status,
            social_locked: false,
            financial_locked: false,
            real_name: true,
            real_card: true,
            bank_activated: false,
            real_person: false,
            valid_until: "2030-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn policy(allow: &[CardStatus]) -> CardStatusPolicy {
        CardStatusPolicy {
            allow: allow.iter().copied().collect(),
            temporary_loss_needs_holder_authorization: true,
            social_account_unlocked: true,
            financial_account_unlocked: true,
        }
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        "2026-11-23T02:00:00Z".parse().unwrap()
    }

    fn code(r: Result<(), GatewayError>) -> String {
        r.map_or_else(|e| e.code.to_string(), |()| "OK".into())
    }

    #[test]
    fn statuses_map_to_their_codes() {
        let normal = policy(&[CardStatus::Normal]);
        let none = BTreeSet::new();
        let cases = [
            (CardStatus::Normal, "OK"),
            (CardStatus::Sealed, "CARD_SEALED"),
            (CardStatus::TemporaryLoss, "CARD_TEMPORARILY_LOST"),
            (CardStatus::FormalLoss, "CARD_LOST"),
            (CardStatus::Cancelled, "CARD_CANCELLED"),
        ];
        for (status, expected) in cases {
            assert_eq!(code(check(&card(status), &normal, &none, false, false, false, now())), expected, "{status:?}");
        }
        // Final statuses stay refused even if a policy lists them.
        let lax = policy(&CardStatus::ALL);
        assert_eq!(code(check(&card(CardStatus::FormalLoss), &lax, &none, false, true, false, now())), "CARD_LOST");
        assert_eq!(code(check(&card(CardStatus::TemporaryLoss), &lax, &none, false, false, false, now())), "HOLDER_AUTHORIZATION_REQUIRED");
        assert_eq!(code(check(&card(CardStatus::TemporaryLoss), &lax, &none, false, true, false, now())), "OK");
    }

    #[test]
    fn locks_expiry_and_assurance() {
        let p = policy(&[CardStatus::Normal]);
        let none = BTreeSet::new();
        let mut locked = card(CardStatus::Normal);
        locked.financial_locked = true;
        assert_eq!(code(check(&locked, &p, &none, false, false, false, now())), "CARD_LOCKED");
        let mut old = card(CardStatus::Normal);
        old.valid_until = "2020-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(code(check(&old, &p, &none, false, false, false, now())), "CARD_EXPIRED");
        let real_card: BTreeSet<_> = [Assurance::RealCard].into();
        assert_eq!(code(check(&card(CardStatus::Normal), &p, &real_card, false, false, false, now())), "OK");
        assert_eq!(code(check(&card(CardStatus::Normal), &p, &real_card, true, false, false, now())), "ASSURANCE_NOT_MET", "payments need the bank account");
        let mut enrolled = card(CardStatus::Normal);
        enrolled.real_person = true;
        let person: BTreeSet<_> = [Assurance::RealPerson].into();
        assert_eq!(code(check(&enrolled, &p, &person, false, false, false, now())), "ASSURANCE_NOT_MET", "no face check in this request");
        assert_eq!(code(check(&enrolled, &p, &person, false, false, true, now())), "OK");
    }
}
