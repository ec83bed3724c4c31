//! `SubtensorModule` storage that minerfleet reads, with subtensor's names, types and hashers.
//!
//! No calls and no logic: tests seed these items with Chopsticks' `import-storage` /
//! `dev_setStorage` (or root via `Sudo` + `System.set_storage`).

use polkadot_sdk::*;

pub use pallet::*;

#[frame_support::pallet]
pub mod pallet {
    use alloc::vec::Vec;
    use codec::Decode;
    use frame_support::pallet_prelude::*;
    use polkadot_sdk::*;
    use sp_runtime::traits::TrailingZeroInput;

    #[pallet::pallet]
    #[pallet::without_storage_info]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config {}

    #[pallet::type_value]
    pub fn DefaultTempo() -> u16 {
        360
    }

    #[pallet::type_value]
    pub fn DefaultAccount<T: Config>() -> T::AccountId {
        T::AccountId::decode(&mut TrailingZeroInput::zeroes())
            .expect("all-zero bytes decode to an account id")
    }

    /// `(netuid, hotkey) -> uid`; absent means not registered.
    #[pallet::storage]
    pub type Uids<T: Config> =
        StorageDoubleMap<_, Identity, u16, Blake2_128Concat, T::AccountId, u16, OptionQuery>;

    /// `(netuid, uid) -> hotkey`; absent decodes to the all-zero account.
    #[pallet::storage]
    pub type Keys<T: Config> = StorageDoubleMap<
        _,
        Identity,
        u16,
        Identity,
        u16,
        T::AccountId,
        ValueQuery,
        DefaultAccount<T>,
    >;

    /// `netuid -> incentive per uid` (u16, divide by 65535).
    #[pallet::storage]
    pub type Incentive<T: Config> = StorageMap<_, Identity, u16, Vec<u16>, ValueQuery>;

    /// `netuid -> exists`.
    #[pallet::storage]
    pub type NetworksAdded<T: Config> = StorageMap<_, Identity, u16, bool, ValueQuery>;

    /// `netuid -> number of uids`.
    #[pallet::storage]
    pub type SubnetworkN<T: Config> = StorageMap<_, Identity, u16, u16, ValueQuery>;

    /// `netuid -> tempo` (blocks per epoch).
    #[pallet::storage]
    pub type Tempo<T: Config> = StorageMap<_, Identity, u16, u16, ValueQuery, DefaultTempo>;

    impl<T: Config> crate::commitments::SubnetInfo<T::AccountId> for Pallet<T> {
        fn is_registered(netuid: u16, who: &T::AccountId) -> bool {
            Uids::<T>::contains_key(netuid, who)
        }

        fn tempo(netuid: u16) -> u16 {
            Tempo::<T>::get(netuid)
        }
    }
}
