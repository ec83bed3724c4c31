//! Transaction extensions that reproduce subtensor's current (spec 425) extension list.
//!
//! * [`CheckNonce`]: standard identifier and encoding (`Compact<u32>`), but, like subtensor, an
//!   account without providers/sufficients is only rejected for `Pays::Yes` calls, so an unfunded
//!   hotkey can commit.
//! * [`ChargeTransactionPaymentWrapper`]: wraps `ChargeTransactionPayment` and, like subtensor,
//!   declares the identifier `ChargeTransactionPayment` in metadata. With the cargo feature
//!   `wrapper-identifier` it keeps the default metadata (identifier
//!   `ChargeTransactionPaymentWrapper`), the regression variant for clients.
//! * Four zero-sized no-op extensions carrying subtensor's identifiers.

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode};
use core::marker::PhantomData;
use frame_support::dispatch::{DispatchInfo, Pays};
use pallet_transaction_payment::ChargeTransactionPayment;
use polkadot_sdk::*;
use scale_info::TypeInfo;
use sp_runtime::{
    impl_tx_ext_default,
    traits::{
        AsSystemOriginSigner, DispatchInfoOf, DispatchOriginOf, Implication, PostDispatchInfoOf,
        TransactionExtension, TransactionExtensionMetadata, ValidateResult, Zero,
    },
    transaction_validity::{
        InvalidTransaction, TransactionLongevity, TransactionSource, TransactionValidityError,
        ValidTransaction,
    },
    DispatchResult, Weight,
};

use crate::{Runtime, RuntimeCall};

/// subtensor's `CheckNonce`.
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo)]
#[scale_info(skip_type_params(T))]
pub struct CheckNonce<T: frame_system::Config>(#[codec(compact)] pub T::Nonce);

impl<T: frame_system::Config> core::fmt::Debug for CheckNonce<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "CheckNonce({:?})", self.0)
    }
}

impl TransactionExtension<RuntimeCall> for CheckNonce<Runtime> {
    const IDENTIFIER: &'static str = "CheckNonce";
    type Implicit = ();
    type Val = Option<crate::AccountId>;
    type Pre = ();

    fn weight(&self, _: &RuntimeCall) -> Weight {
        Weight::zero()
    }

    fn validate(
        &self,
        origin: DispatchOriginOf<RuntimeCall>,
        _call: &RuntimeCall,
        info: &DispatchInfoOf<RuntimeCall>,
        _len: usize,
        _self_implicit: (),
        _inherited_implication: &impl Implication,
        _source: TransactionSource,
    ) -> ValidateResult<Self::Val, RuntimeCall> {
        let Some(who) = origin.as_system_origin_signer() else {
            return Ok((Default::default(), None, origin));
        };
        let account = frame_system::Account::<Runtime>::get(who);
        if info.pays_fee == Pays::Yes
            && account.providers.is_zero()
            && account.sufficients.is_zero()
        {
            return Err(InvalidTransaction::Payment.into());
        }
        if self.0 < account.nonce {
            return Err(InvalidTransaction::Stale.into());
        }
        let provides = alloc::vec![Encode::encode(&(who.clone(), self.0))];
        let requires = if account.nonce < self.0 {
            alloc::vec![Encode::encode(&(who.clone(), self.0 - 1))]
        } else {
            Vec::new()
        };
        let validity = ValidTransaction {
            priority: 0,
            requires,
            provides,
            longevity: TransactionLongevity::MAX,
            propagate: true,
        };
        Ok((validity, Some(who.clone()), origin))
    }

    fn prepare(
        self,
        val: Self::Val,
        _origin: &DispatchOriginOf<RuntimeCall>,
        _call: &RuntimeCall,
        _info: &DispatchInfoOf<RuntimeCall>,
        _len: usize,
    ) -> Result<Self::Pre, TransactionValidityError> {
        let Some(who) = val else { return Ok(()) };
        let account = frame_system::Account::<Runtime>::get(&who);
        if self.0 > account.nonce {
            return Err(InvalidTransaction::Future.into());
        }
        frame_system::Account::<Runtime>::mutate(&who, |account| {
            account.nonce = self.0.wrapping_add(1)
        });
        Ok(())
    }
}

/// subtensor's fee extension: delegates everything to `ChargeTransactionPayment`.
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo)]
#[scale_info(skip_type_params(T))]
pub struct ChargeTransactionPaymentWrapper<T: pallet_transaction_payment::Config> {
    inner: ChargeTransactionPayment<T>,
}

impl<T: pallet_transaction_payment::Config> core::fmt::Debug
    for ChargeTransactionPaymentWrapper<T>
{
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "ChargeTransactionPaymentWrapper({:?})", self.inner)
    }
}

impl TransactionExtension<RuntimeCall> for ChargeTransactionPaymentWrapper<Runtime> {
    const IDENTIFIER: &'static str = "ChargeTransactionPaymentWrapper";
    type Implicit = ();
    type Val = pallet_transaction_payment::Val<Runtime>;
    type Pre = pallet_transaction_payment::Pre<Runtime>;

    fn metadata() -> Vec<TransactionExtensionMetadata> {
        if cfg!(feature = "wrapper-identifier") {
            alloc::vec![TransactionExtensionMetadata {
                identifier: Self::IDENTIFIER,
                ty: scale_info::meta_type::<Self>(),
                implicit: scale_info::meta_type::<()>(),
            }]
        } else {
            <ChargeTransactionPayment<Runtime> as TransactionExtension<RuntimeCall>>::metadata()
        }
    }

    fn weight(&self, call: &RuntimeCall) -> Weight {
        self.inner.weight(call)
    }

    fn validate(
        &self,
        origin: DispatchOriginOf<RuntimeCall>,
        call: &RuntimeCall,
        info: &DispatchInfoOf<RuntimeCall>,
        len: usize,
        self_implicit: (),
        inherited_implication: &impl Implication,
        source: TransactionSource,
    ) -> ValidateResult<Self::Val, RuntimeCall> {
        self.inner.validate(
            origin,
            call,
            info,
            len,
            self_implicit,
            inherited_implication,
            source,
        )
    }

    fn prepare(
        self,
        val: Self::Val,
        origin: &DispatchOriginOf<RuntimeCall>,
        call: &RuntimeCall,
        info: &DispatchInfoOf<RuntimeCall>,
        len: usize,
    ) -> Result<Self::Pre, TransactionValidityError> {
        self.inner.prepare(val, origin, call, info, len)
    }

    fn post_dispatch_details(
        pre: Self::Pre,
        info: &DispatchInfo,
        post_info: &PostDispatchInfoOf<RuntimeCall>,
        len: usize,
        result: &DispatchResult,
    ) -> Result<Weight, TransactionValidityError> {
        <ChargeTransactionPayment<Runtime> as TransactionExtension<RuntimeCall>>::post_dispatch_details(
            pre, info, post_info, len, result,
        )
    }
}

macro_rules! zero_sized_extension {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo)]
        #[scale_info(skip_type_params(T))]
        pub struct $name<T: Send + Sync + 'static>(pub PhantomData<T>);

        impl<T: Send + Sync + 'static> $name<T> {
            pub fn new() -> Self {
                Self(PhantomData)
            }
        }

        impl<T: Send + Sync + 'static> Default for $name<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T: Send + Sync + 'static> core::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl TransactionExtension<RuntimeCall> for $name<Runtime> {
            const IDENTIFIER: &'static str = stringify!($name);
            type Implicit = ();
            type Val = ();
            type Pre = ();
            impl_tx_ext_default!(RuntimeCall; weight validate prepare);
        }
    )*};
}

zero_sized_extension! {
    /// No-op stand-in for subtensor's sudo extension (zero-sized, no implicit).
    SudoTransactionExtension;
    /// No-op stand-in for subtensor's shielded-transaction check.
    CheckShieldedTxValidity;
    /// No-op stand-in for subtensor's own checks (rate limits, etc.).
    SubtensorTransactionExtension;
    /// No-op stand-in for subtensor's drand priority extension.
    DrandPriority;
}
