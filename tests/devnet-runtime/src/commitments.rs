//! `Commitments` pallet: subtensor's commitment wire contract (spec 425 source), nothing more.
//!
//! Mirrors what clients see on the wire: the `set_commitment` call (index 0, `Pays::No`), the
//! custom `Data` encoding, the `CommitmentOf`/`LastCommitment`/`UsedSpaceOf` double maps with
//! `(Identity netuid, Twox64Concat account)` hashers, `MaxSpace`, the error and event lists in
//! subtensor's order, and the per-epoch space budget. Deposits are always zero; timelock reveal
//! and bonds reset are not reproduced.

use alloc::{boxed::Box, vec};
use codec::{Decode, DecodeWithMemTracking, Encode, Input, Output};
use frame_support::{CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use polkadot_sdk::*;
use scale_info::{
    build::{Fields, Variants},
    Path, Type, TypeInfo,
};
use sp_runtime::{
    traits::{ConstU32, Get},
    BoundedVec,
};

pub use pallet::*;

/// What the commitments pallet needs to know about subnets (provided by `SubtensorModule`).
pub trait SubnetInfo<AccountId> {
    /// subtensor's `CanCommit`: the hotkey has a uid on the subnet.
    fn is_registered(netuid: u16, who: &AccountId) -> bool;
    /// The subnet's tempo, used for the space-budget epoch.
    fn tempo(netuid: u16) -> u16;
}

/// One commitment field. Encoded like subtensor's `Data`: a tag byte, then the payload.
///
/// `Raw(len)` uses tag `len + 1` followed by exactly `len` bytes (no length prefix).
#[derive(Clone, Eq, PartialEq, Debug)]
pub enum Data {
    None,
    Raw(BoundedVec<u8, ConstU32<128>>),
    BlakeTwo256([u8; 32]),
    Sha256([u8; 32]),
    Keccak256([u8; 32]),
    ShaThree256([u8; 32]),
    TimelockEncrypted {
        encrypted: BoundedVec<u8, ConstU32<1024>>,
        reveal_round: u64,
    },
    ResetBondsFlag,
    BigRaw(BoundedVec<u8, ConstU32<512>>),
}

impl Data {
    /// Bytes this field counts against the per-epoch space budget.
    pub fn len_for_rate_limit(&self) -> u64 {
        match self {
            Data::None | Data::ResetBondsFlag => 0,
            Data::Raw(bytes) => bytes.len() as u64,
            Data::BigRaw(bytes) => bytes.len() as u64,
            Data::BlakeTwo256(_) | Data::Sha256(_) | Data::Keccak256(_) | Data::ShaThree256(_) => {
                32
            }
            Data::TimelockEncrypted { encrypted, .. } => encrypted.len() as u64,
        }
    }
}

impl Encode for Data {
    fn encode_to<O: Output + ?Sized>(&self, dest: &mut O) {
        match self {
            Data::None => dest.push_byte(0),
            Data::Raw(bytes) => {
                dest.push_byte(bytes.len() as u8 + 1);
                dest.write(bytes);
            }
            Data::BlakeTwo256(h) => {
                dest.push_byte(130);
                dest.write(h);
            }
            Data::Sha256(h) => {
                dest.push_byte(131);
                dest.write(h);
            }
            Data::Keccak256(h) => {
                dest.push_byte(132);
                dest.write(h);
            }
            Data::ShaThree256(h) => {
                dest.push_byte(133);
                dest.write(h);
            }
            Data::TimelockEncrypted {
                encrypted,
                reveal_round,
            } => {
                dest.push_byte(134);
                encrypted.encode_to(dest);
                reveal_round.encode_to(dest);
            }
            Data::ResetBondsFlag => dest.push_byte(135),
            Data::BigRaw(bytes) => {
                dest.push_byte(136);
                bytes.encode_to(dest);
            }
        }
    }
}

impl Decode for Data {
    fn decode<I: Input>(input: &mut I) -> Result<Self, codec::Error> {
        let tag = input.read_byte()?;
        let hash = |input: &mut I| -> Result<[u8; 32], codec::Error> {
            let mut h = [0u8; 32];
            input.read(&mut h)?;
            Ok(h)
        };
        Ok(match tag {
            0 => Data::None,
            1..=129 => {
                let mut bytes = vec![0u8; tag as usize - 1];
                input.read(&mut bytes)?;
                Data::Raw(BoundedVec::truncate_from(bytes))
            }
            130 => Data::BlakeTwo256(hash(input)?),
            131 => Data::Sha256(hash(input)?),
            132 => Data::Keccak256(hash(input)?),
            133 => Data::ShaThree256(hash(input)?),
            134 => Data::TimelockEncrypted {
                encrypted: Decode::decode(input)?,
                reveal_round: Decode::decode(input)?,
            },
            135 => Data::ResetBondsFlag,
            136 => Data::BigRaw(Decode::decode(input)?),
            _ => return Err("invalid Data tag".into()),
        })
    }
}

impl DecodeWithMemTracking for Data {}

macro_rules! raw_variants {
    ($variants:expr; $($n:literal)*) => {
        $variants
        $(
            .variant(concat!("Raw", stringify!($n)), |v| {
                v.index($n + 1).fields(Fields::unnamed().field(|f| f.ty::<[u8; $n]>()))
            })
        )*
    };
}

impl TypeInfo for Data {
    type Identity = Self;

    fn type_info() -> Type {
        let variants = Variants::new().variant("None", |v| v.index(0));
        let variants = raw_variants!(variants;
            0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
            32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60
            61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89
            90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112 113
            114 115 116 117 118 119 120 121 122 123 124 125 126 127 128);
        let hash = |v: scale_info::build::VariantBuilder<_>, index: u8| {
            v.index(index)
                .fields(Fields::unnamed().field(|f| f.ty::<[u8; 32]>()))
        };
        let variants = variants
            .variant("BlakeTwo256", |v| hash(v, 130))
            .variant("Sha256", |v| hash(v, 131))
            .variant("Keccak256", |v| hash(v, 132))
            .variant("ShaThree256", |v| hash(v, 133))
            .variant("TimelockEncrypted", |v| {
                v.index(134).fields(
                    Fields::named()
                        .field(|f| {
                            f.ty::<BoundedVec<u8, ConstU32<1024>>>()
                                .name("encrypted")
                                .type_name(
                                    "BoundedVec<u8, ConstU32<MAX_TIMELOCK_COMMITMENT_SIZE_BYTES>>",
                                )
                        })
                        .field(|f| f.ty::<u64>().name("reveal_round").type_name("u64")),
                )
            })
            .variant("ResetBondsFlag", |v| v.index(135))
            .variant("BigRaw", |v| {
                v.index(136)
                    .fields(Fields::unnamed().field(|f| f.ty::<BoundedVec<u8, ConstU32<512>>>()))
            });
        Type::builder()
            .path(Path::new("Data", module_path!()))
            .variant(variants)
    }
}

/// `CommitmentInfo { fields: BoundedVec<Data, MaxFields> }`.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    CloneNoBound,
    EqNoBound,
    PartialEqNoBound,
    DebugNoBound,
    TypeInfo,
)]
#[scale_info(skip_type_params(FieldLimit))]
pub struct CommitmentInfo<FieldLimit: Get<u32>> {
    pub fields: BoundedVec<Data, FieldLimit>,
}

/// What `CommitmentOf` stores.
#[derive(Encode, Decode, CloneNoBound, EqNoBound, PartialEqNoBound, DebugNoBound, TypeInfo)]
#[scale_info(skip_type_params(FieldLimit))]
pub struct Registration<
    Balance: Clone + Eq + core::fmt::Debug,
    FieldLimit: Get<u32>,
    BlockNumber: Clone + Eq + core::fmt::Debug,
> {
    pub deposit: Balance,
    pub block: BlockNumber,
    pub info: CommitmentInfo<FieldLimit>,
}

/// What `UsedSpaceOf` stores: bytes committed in the epoch `last_epoch`.
#[derive(Encode, Decode, Clone, Eq, PartialEq, Debug, Default, TypeInfo)]
pub struct UsageTracker {
    pub last_epoch: u64,
    pub used_space: u64,
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;
    use sp_runtime::SaturatedConversion;

    #[pallet::pallet]
    #[pallet::without_storage_info]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// Registration and tempo lookups (`SubtensorModule`).
        type Subnets: SubnetInfo<Self::AccountId>;
        /// Maximum number of fields in one commitment.
        #[pallet::constant]
        type MaxFields: Get<u32> + 'static;
    }

    #[pallet::type_value]
    pub fn DefaultMaxSpace() -> u32 {
        3100
    }

    #[pallet::storage]
    pub type CommitmentOf<T: Config> = StorageDoubleMap<
        _,
        Identity,
        u16,
        Twox64Concat,
        T::AccountId,
        Registration<u64, T::MaxFields, BlockNumberFor<T>>,
        OptionQuery,
    >;

    #[pallet::storage]
    pub type LastCommitment<T: Config> = StorageDoubleMap<
        _,
        Identity,
        u16,
        Twox64Concat,
        T::AccountId,
        BlockNumberFor<T>,
        OptionQuery,
    >;

    #[pallet::storage]
    pub type UsedSpaceOf<T: Config> =
        StorageDoubleMap<_, Identity, u16, Twox64Concat, T::AccountId, UsageTracker, OptionQuery>;

    #[pallet::storage]
    pub type MaxSpace<T: Config> = StorageValue<_, u32, ValueQuery, DefaultMaxSpace>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A commitment was set.
        Commitment { netuid: u16, who: T::AccountId },
        /// A timelocked commitment was set.
        TimelockCommitment {
            netuid: u16,
            who: T::AccountId,
            reveal_round: u64,
        },
        /// A timelocked commitment was revealed.
        CommitmentRevealed { netuid: u16, who: T::AccountId },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// More fields than `MaxFields`.
        TooManyFieldsInCommitmentInfo,
        /// The account is not registered on the subnet.
        AccountNotAllowedCommit,
        /// The per-epoch space budget of this hotkey on this subnet is spent.
        SpaceLimitExceeded,
        /// Deposit bookkeeping failed (never with zero deposits).
        UnexpectedUnreserveLeftover,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Set the caller's commitment on `netuid`, replacing any previous one.
        #[pallet::call_index(0)]
        #[pallet::weight((Weight::from_parts(33_480_000, 0).saturating_add(T::DbWeight::get().reads_writes(5, 3)), DispatchClass::Normal, Pays::No))]
        pub fn set_commitment(
            origin: OriginFor<T>,
            netuid: u16,
            info: Box<CommitmentInfo<T::MaxFields>>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(
                T::Subnets::is_registered(netuid, &who),
                Error::<T>::AccountNotAllowedCommit
            );
            ensure!(
                info.fields.len() as u32 <= T::MaxFields::get(),
                Error::<T>::TooManyFieldsInCommitmentInfo
            );

            let cur_block = frame_system::Pallet::<T>::block_number();
            let block_u64: u64 = cur_block.saturated_into();
            let tempo_plus_one = T::Subnets::tempo(netuid) as u64 + 1;
            let epoch = (block_u64 + netuid as u64 + 1) / tempo_plus_one;
            let required = info
                .fields
                .iter()
                .map(Data::len_for_rate_limit)
                .sum::<u64>()
                .max(100);
            let max_space = MaxSpace::<T>::get() as u64;
            let mut usage = UsedSpaceOf::<T>::get(netuid, &who).unwrap_or_default();
            if usage.last_epoch != epoch {
                usage = UsageTracker {
                    last_epoch: epoch,
                    used_space: 0,
                };
            }
            ensure!(
                usage.used_space.saturating_add(required) <= max_space,
                Error::<T>::SpaceLimitExceeded
            );
            usage.used_space = usage.used_space.saturating_add(required);
            UsedSpaceOf::<T>::insert(netuid, &who, usage);

            let reveal_round = info.fields.iter().find_map(|f| match f {
                Data::TimelockEncrypted { reveal_round, .. } => Some(*reveal_round),
                _ => None,
            });
            CommitmentOf::<T>::insert(
                netuid,
                &who,
                Registration {
                    deposit: 0u64,
                    block: cur_block,
                    info: *info,
                },
            );
            LastCommitment::<T>::insert(netuid, &who, cur_block);
            match reveal_round {
                Some(reveal_round) => Self::deposit_event(Event::TimelockCommitment {
                    netuid,
                    who,
                    reveal_round,
                }),
                None => Self::deposit_event(Event::Commitment { netuid, who }),
            }
            Ok(())
        }

        /// Root: change the per-epoch space budget.
        #[pallet::call_index(2)]
        #[pallet::weight((Weight::from_parts(3_000_000, 0).saturating_add(T::DbWeight::get().writes(1)), DispatchClass::Operational, Pays::No))]
        pub fn set_max_space(origin: OriginFor<T>, new_limit: u32) -> DispatchResult {
            ensure_root(origin)?;
            MaxSpace::<T>::put(new_limit);
            Ok(())
        }
    }
}
